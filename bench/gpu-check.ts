// `npm run gpu:check [-- --device cuda:0|cuda-sim] [--ops-only] [--quick] [--decode-8b]`: everything a lent GPU
// should tell us, in one call — the simulator self-tests on hardware, every op of the table
// (test/runtime/cases) against its float64 reference and against the CPU backend with a relative-error
// report per op, then the kernel benchmarks at Qwen3-0.6B and Qwen3-8B shapes against the measured
// copy bandwidth, whole decode steps (CUDA graph vs op by op, against the memory roofline and the ideal
// step time of the bytes-per-stage model, and the host-to-device metadata copies per step), every
// forced kernel variant (bench/dev/variants.ts: matmul paths plain and with the SwiGLU epilogue, decode
// attention's split counts with the merge fused or separate), the Hopper wgmma GEMM against the
// mma.sync path and PyTorch at prefill shapes (bench/wgmma-gemm.ts; its wgmma/TMA self-tests are among
// the self-tests), the simulator's sanitizer self-tests (the fused merge's ticket protocol among them),
// and PyTorch's matmul/SDPA on the same shapes where python3 + torch are present.
// `--device cuda-sim` runs the same script here, without a GPU, to check the script itself.
import { spawnSync } from 'node:child_process';
import { Device, ops, type SamplingRow } from '../src/runtime/index.js';
import { compare } from '../test/reference/compare.js';
import { denseCases } from '../test/runtime/cases/dense.js';
import { normCases } from '../test/runtime/cases/norm.js';
import { pagedCases } from '../test/runtime/cases/paged.js';
import { quantizedCases } from '../test/runtime/cases/quantized.js';
import { decodeMergeModel } from './decode-model.js';
import { benchDecodeSteps } from './decode-steps.js';
import { benchVariants, reportVariants } from './dev/variants.js';
import { benchKernels } from './kernels.js';
import { markdownTable, runInfo, saveResults, type Row } from './results.js';
import { modelShapes, type ModelShape } from './shapes.js';
import { torchBaseline } from './torch-baseline.js';
import { benchWgmma } from './wgmma-gemm.js';

/** What the simulator can run in seconds: the decode-step bench's code path, not a measurement. */
const tinyShape: ModelShape = { name: 'tiny', hidden: 72, intermediate: 100, numHeads: 4, numKvHeads: 2, headDim: 64, vocab: 97, numLayers: 2 };

interface Options {
  device: string;
  opsOnly: boolean;
  quick: boolean;
  /** Also time decode steps at Qwen3-8B shapes: writes a 16 GB random checkpoint first (minutes). */
  decode8b: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = { device: 'cuda:0', opsOnly: false, quick: false, decode8b: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--device') o.device = argv[++i];
    else if (argv[i] === '--ops-only') o.opsOnly = true;
    else if (argv[i] === '--quick') o.quick = true;
    else if (argv[i] === '--decode-8b') o.decode8b = true;
    else throw new Error(`gpu:check: unknown option ${argv[i]}`);
  }
  return o;
}

async function checkOps(device: Device, cpu: Device): Promise<{ rows: Row[]; failures: number }> {
  const rows: Row[] = [];
  let failures = 0;
  const table = [...denseCases(), ...quantizedCases(), ...normCases(), ...pagedCases()];
  const simulated = device.name === 'cuda-sim';
  for (const c of table) {
    if (simulated && c.heavyForSim) continue;
    const op = c.name.slice(0, c.name.indexOf('('));
    let status = 'pass';
    let vsRef = NaN;
    let vsCpu = NaN;
    try {
      const out = await c.run(device);
      const ref = await c.run(cpu);
      const expected = c.expected();
      const tol = c.tolerance(device);
      for (const [key, e] of Object.entries(expected)) {
        vsRef = Math.max(Number.isNaN(vsRef) ? 0 : vsRef, compare(out[key], e).maxRel);
        vsCpu = Math.max(Number.isNaN(vsCpu) ? 0 : vsCpu, compare(out[key], ref[key]).maxRel);
      }
      if (!(vsRef <= tol) || !(vsCpu <= Math.max(tol, 1e-5) * 2)) status = `FAIL (tolerance ${tol})`;
    } catch (e) {
      status = `ERROR: ${(e as Error).message.split('\n')[0]}`;
    }
    if (status !== 'pass') failures++;
    rows.push({ op, case: c.name, 'max rel err vs f64': vsRef, 'max rel err vs cpu': vsCpu, status });
    if (status !== 'pass') console.log(`  ${c.name}: ${status}`);
  }
  return { rows, failures };
}

/** An allowed-token bitmask (native/ops.h SampleArgs) of the tokens that are multiples of 7. */
function everySeventh(vocab: number): Int32Array {
  const mask = new Int32Array(Math.ceil(vocab / 32));
  for (let t = 0; t < vocab; t += 7) mask[t >> 5] |= 1 << (t & 31);
  return mask;
}

/** Seeded draws over the real vocabulary size must pick the same tokens as the CPU backend. */
async function checkSampling(device: Device, cpu: Device): Promise<{ rows: Row[]; failures: number }> {
  const vocab = 151_936;
  const rowsN = 16;
  const values = new Float32Array(rowsN * vocab);
  let s = 12345;
  for (let i = 0; i < values.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    values[i] = ((s / 4294967296) * 2 - 1) * 4;
  }
  const settings: { label: string; row: SamplingRow }[] = [
    { label: 'greedy', row: { temperature: 0 } },
    { label: 'temperature 0.8', row: { temperature: 0.8, seed: 7 } },
    { label: 'top-k 40', row: { temperature: 1, topK: 40, seed: 8 } },
    { label: 'top-p 0.9', row: { temperature: 0.7, topP: 0.9, seed: 9 } },
    { label: 'min-p 0.05 + penalties', row: { temperature: 1, minP: 0.05, seed: 10, repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.2, penaltyTokens: Int32Array.from([1, 2, 3]), penaltyCounts: Int32Array.from([0, 2, 1]) } },
    { label: 'token mask (every 7th token) + logit bias', row: { temperature: 0.9, topP: 0.95, seed: 11, allowedMask: everySeventh(vocab), biasTokens: Int32Array.from([7, 151_935]), biasValues: [3, -2] } },
  ];
  const rows: Row[] = [];
  let failures = 0;
  for (const { label, row } of settings) {
    const draw = async (dev: Device) => {
      const logits = dev.tensor(values, [rowsN, vocab]);
      const r = await ops.sample(logits, Array.from({ length: rowsN }, (_, i) => ({ ...row, offset: i })), { numTop: 5 });
      logits.dispose();
      return r;
    };
    const [a, b] = [await draw(device), await draw(cpu)];
    let same = 0;
    let lpErr = 0;
    for (let i = 0; i < rowsN; i++) {
      if (a.tokens[i] === b.tokens[i]) same++;
      lpErr = Math.max(lpErr, Math.abs(a.logprobs[i] - b.logprobs[i]), Math.abs(a.topLogprobs[i * 5] - b.topLogprobs[i * 5]));
    }
    const ok = same === rowsN && lpErr < 1e-4;
    if (!ok) failures++;
    rows.push({ op: 'sample', case: `${label}, vocab ${vocab}, ${rowsN} rows`, 'same token as cpu': `${same}/${rowsN}`, 'max logprob diff': lpErr, status: ok ? 'pass' : 'FAIL' });
  }
  return { rows, failures };
}

async function main(): Promise<void> {
  const opt = parse(process.argv.slice(2));
  const status = Device.cudaStatus();
  console.log(`CUDA: ${status.count} device(s)${status.count ? '' : ` — ${status.reason}`}; backend built: ${status.built}`);
  if (opt.device !== 'cuda-sim' && status.count === 0) {
    console.error('gpu:check needs a CUDA device (use --device cuda-sim to check the script without one)');
    process.exit(2);
  }
  const device = Device.open(opt.device as 'cuda');
  const cpu = Device.open('cpu');
  console.log(`device: ${device.description}`);

  console.log('\n== simulator self-tests on this device');
  const self = device.selfTest();
  if (device.name !== 'cuda-sim') {
    // The simulator's own checks (its sanitizers catching planted bugs, poison, faults), on this host.
    const sim = Device.open('cuda-sim');
    self.push(...sim.selfTest().filter((t) => t.name.startsWith('simulator') || t.name.startsWith('sanitizers')).map((t) => ({ ...t, name: `cuda-sim: ${t.name}` })));
    sim.dispose();
  }
  const selfFailed = self.filter((t) => !t.passed);
  for (const t of self) console.log(`  ${t.passed ? 'ok  ' : 'FAIL'} ${t.name}${t.passed ? '' : `: ${t.detail}`}`);

  console.log('\n== ops vs float64 reference and vs cpu');
  const opRows = await checkOps(device, cpu);
  const sampling = await checkSampling(device, cpu);
  console.log(markdownTable(sampling.rows));
  const failures = opRows.failures + sampling.failures;
  const perOp = new Map<string, Row>();
  for (const r of opRows.rows) {
    const prev = perOp.get(r.op as string);
    const worst = (a: unknown, b: unknown) => Math.max(Number(a) || 0, Number(b) || 0);
    perOp.set(r.op as string, {
      op: r.op,
      cases: (Number(prev?.cases) || 0) + 1,
      'worst rel err vs f64': worst(prev?.['worst rel err vs f64'], r['max rel err vs f64']),
      'worst rel err vs cpu': worst(prev?.['worst rel err vs cpu'], r['max rel err vs cpu']),
      failed: (Number(prev?.failed) || 0) + (r.status === 'pass' ? 0 : 1),
    });
  }
  const summary = [...perOp.values()];
  console.log(markdownTable(summary));
  saveResults(`gpu-check-ops-${device.name.replace(':', '')}`, runInfo('gpu-check ops', device.description),
    { selfTests: self, sampling: sampling.rows }, opRows.rows);
  device.dispose();
  cpu.dispose();

  let decodeFailures = 0;
  let variantFailures = 0;
  let wgmmaFailures = 0;
  if (!opt.opsOnly) {
    console.log('\n== decode steps: CUDA graph vs op by op');
    const simulated = opt.device === 'cuda-sim';
    const runs = simulated
      ? [{ shape: tinyShape, batches: [1, 3], promptTokens: 8, steps: 4 }]
      : [
          { shape: modelShapes['0.6b'], batches: [1, 8, 32, 64], promptTokens: 512, steps: 64 },
          ...(opt.decode8b ? [{ shape: modelShapes['8b'], batches: [1, 16], promptTokens: 512, steps: 32 }] : []),
        ];
    const decodeRows: Row[] = [];
    const stageRows: Row[] = [];
    for (const r of runs) {
      const { rows, stageRows: stages, agreement } = await benchDecodeSteps(opt.device, r.shape, r);
      decodeRows.push(...rows);
      stageRows.push(...stages);
      if (!(agreement <= 1e-3)) {
        decodeFailures++;
        console.log(`  FAIL: ${r.shape.name}: graph and eager logits differ by ${agreement.toExponential(2)} (relative)`);
      }
    }
    console.log(markdownTable(decodeRows));
    console.log('\n== decode step: bytes per stage and ideal time at the measured bandwidth (bench/decode-model.ts)');
    console.log(markdownTable(stageRows));
    // What the latency model expects of the fused flash-decoding merge (H100 assumptions), next to the
    // variant harness's measured 'fused merge' / 'merge kernel' rows below.
    const mergeRows: Row[] = [];
    for (const shape of [modelShapes['0.6b'], modelShapes['8b']])
      for (const batch of [1, 8, 32])
        for (const context of [512, 4096, 32768]) {
          const m = decodeMergeModel(shape, batch, context, 132);
          mergeRows.push({ model: shape.name, batch, context, splits: m.splits, 'fused tail µs': m.fusedUs, 'merge kernel µs (with its boundary)': m.unfusedUs, 'model picks': m.fusedUs < m.unfusedUs ? 'fused' : 'merge kernel' });
        }
    console.log('\n== decode merge: fused vs separate, latency model (bench/decode-model.ts, decodeMergeModel; not measured)');
    console.log(markdownTable(mergeRows));
    saveResults(`decode-steps-${opt.device.replace(':', '')}`, runInfo('decode steps', opt.device), { stages: stageRows, mergeModel: mergeRows }, decodeRows,
      simulated ? 'Simulator run: checks the bench, measures nothing.' : 'Greedy decode after a prompt per sequence; tok/s over all sequences; roofline = measured copy bandwidth ÷ bf16 weight bytes per step; ideal step = bytes-per-stage model (weights, KV read, f32 activations) ÷ the same bandwidth.',
      `\n\n## Bytes per stage (bench/decode-model.ts)\n\n${markdownTable(stageRows)}\n\n## Decode merge, latency model (H100 assumptions, not measured)\n\n${markdownTable(mergeRows)}`);

    console.log('\n== kernel variants (bench/dev/variants.ts): each forced, checked against float64, timed');
    const variants = await benchVariants(['--device', opt.device]);
    reportVariants(opt.device, variants.rows);
    variantFailures = variants.failures;

    for (const shape of opt.quick ? ['0.6b'] : ['0.6b', '8b']) {
      console.log(`\n== kernel benchmarks, Qwen3-${shape} shapes`);
      await benchKernels(['--device', opt.device, '--model-shape', shape, ...(opt.quick ? ['--quick'] : [])]);
    }
    let torchRows: Row[] = [];
    if (opt.device !== 'cuda-sim') {
      console.log('\n== PyTorch on the same shapes');
      const torch = torchBaseline(spawnSync);
      console.log(torch.ok ? markdownTable(torch.rows) : `  skipped: ${torch.reason}`);
      if (torch.ok) saveResults('torch-baseline', runInfo('torch baseline', torch.device), {}, torch.rows);
      if (torch.ok) torchRows = torch.rows;
    }
    console.log('\n== Hopper GEMM (wgmma + TMA) vs mma.sync (and PyTorch) at prefill shapes');
    wgmmaFailures = (await benchWgmma(opt.device, torchRows)).failures;
  }

  const failed = selfFailed.length + failures + decodeFailures + variantFailures + wgmmaFailures;
  console.log(`\n${failed === 0 ? 'gpu:check passed' : `gpu:check FAILED: ${selfFailed.length} self-test(s), ${failures} op case(s), ${decodeFailures} decode check(s), ${variantFailures} kernel variant(s), ${wgmmaFailures} wgmma GEMM case(s)`}`);
  process.exit(failed === 0 ? 0 : 1);
}

await main();
