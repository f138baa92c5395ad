// `npx tsx bench/cpu-precision.ts [--quick] [--reps 3] [--out FILE.json]`
// CPU matmul precision 'exact' (f32 activations, bf16 weights widened, FMA) against 'fast' (activations
// rounded to bf16; AMX-BF16 tiles from 3 rows on where the CPU has them, else AVX512-BF16 vdpbf16ps —
// PARALON_CPU_AMX=0 forces the latter), interleaved in one process on two CPU devices: matmul GFLOP/s
// at Qwen3-0.6B's shapes (bf16 weights) for decode, batched decode and prefill row counts; prefill and
// decode tok/s of a Qwen3-0.6B-shaped random bf16 checkpoint through CausalLM.forward; and how far the
// fast logits move (top-1 agreement, max |Δ probability| over the prompt's last-token distributions).
// On a CPU without AVX512-BF16 or AMX the 'fast' device runs exact (its description says which ran).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Device, ops, toBf16, type Tensor } from '../src/runtime/index.js';
import { CausalLM } from '../src/model/step.js';
import { randomCheckpoint } from '../src/model/random-checkpoint.js';
import { shapeSpec } from './checkpoints.js';
import { modelShapes } from './shapes.js';
import { randomValues } from './random-values.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const reps = Number(args.includes('--reps') ? args[args.indexOf('--reps') + 1] : quick ? 2 : 3);
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
const shape = modelShapes['0.6b'];
const PRECISIONS = ['exact', 'fast'] as const;
type Precision = (typeof PRECISIONS)[number];
const devices: Record<Precision, Device> = { exact: Device.open('cpu', { precision: 'exact' }), fast: Device.open('cpu', { precision: 'fast' }) };
const loadStart = os.loadavg();
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Seconds per launch: back to back for ≥ 0.2 s after a warm-up. */
async function time(device: Device, launch: () => void): Promise<number> {
  launch();
  await device.synchronize();
  let t0 = performance.now();
  launch();
  await device.synchronize();
  const n = Math.max(2, Math.min(300, Math.ceil(0.2 / Math.max((performance.now() - t0) / 1000, 1e-6))));
  t0 = performance.now();
  for (let i = 0; i < n; i++) launch();
  await device.synchronize();
  return (performance.now() - t0) / 1000 / n;
}

// 1. Matmuls: (M, N, K) of the model's projections; the lm_head only at batch sizes.
const matmulRows: Record<string, string | number>[] = [];
const shapes: [string, number, number][] = [
  ['q/o_proj', 1024, 1024],
  ['gate/up', 3072, 1024],
  ['down_proj', 1024, 3072],
  ['lm_head', shape.vocab, 1024],
];
for (const [name, N, K] of quick ? shapes.slice(1, 3) : shapes) {
  const w: Record<Precision, Tensor> = {
    exact: devices.exact.tensor(toBf16(randomValues(N * K, 3)), [N, K], 'bf16'),
    fast: devices.fast.tensor(toBf16(randomValues(N * K, 3)), [N, K], 'bf16'),
  };
  for (const M of quick ? [1, 16, 512] : [1, 4, 16, 64, 512]) {
    if (name === 'lm_head' && M > 64) continue;
    const t: Record<Precision, number[]> = { exact: [], fast: [] };
    const x = { exact: devices.exact.tensor(randomValues(M * K, 5), [M, K]), fast: devices.fast.tensor(randomValues(M * K, 5), [M, K]) };
    const y = { exact: devices.exact.empty([M, N]), fast: devices.fast.empty([M, N]) };
    for (let r = 0; r < reps; r++) for (const p of PRECISIONS) t[p].push(await time(devices[p], () => ops.matmul(x[p], w[p], y[p])));
    const gflops = (p: Precision) => Math.round((2 * M * N * K) / median(t[p]) / 1e8) / 10;
    matmulRows.push({ op: name, M, N, K, 'exact GFLOP/s': gflops('exact'), 'fast GFLOP/s': gflops('fast'), speedup: Math.round((median(t.exact) / median(t.fast)) * 100) / 100 });
    console.error(JSON.stringify(matmulRows.at(-1)));
    for (const p of PRECISIONS) (x[p].dispose(), y[p].dispose());
  }
  for (const p of PRECISIONS) w[p].dispose();
}

// 2. Model: prefill of a prompt, then greedy decode steps at batch 1, and the logits' drift.
const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-cpu-precision-'));
const modelRows: Record<string, string | number>[] = [];
const agreement = { positions: 0, top1Agree: 0, maxProbDiff: 0 };
try {
  console.error('writing a Qwen3-0.6B-shaped random bf16 checkpoint…');
  randomCheckpoint({ dir, ...shapeSpec(shape, 'bf16'), eosTokenIds: [shape.vocab - 1] });
  const models = { exact: await CausalLM.load(dir, devices.exact, { maxSeqs: 1, maxBatchTokens: 512, graphs: false }),
    fast: await CausalLM.load(dir, devices.fast, { maxSeqs: 1, maxBatchTokens: 512, graphs: false }) };
  const prompt = quick ? 128 : 256;
  const steps = quick ? 8 : 16;
  const blockSize = 16;
  const blocks = Math.ceil((prompt + steps + 2) / blockSize);
  const table = Array.from({ length: blocks }, (_, j) => j);
  const tokens = Array.from({ length: prompt }, (_, i) => (i * 7919 + 13) % shape.vocab);
  const res: Record<Precision, { prefill: number[]; decode: number[] }> = { exact: { prefill: [], decode: [] }, fast: { prefill: [], decode: [] } };
  const softmax = (l: Float32Array) => {
    let m = -Infinity;
    for (const v of l) m = Math.max(m, v);
    let s = 0;
    const p = l.map((v) => ((s += Math.exp(v - m)), Math.exp(v - m)));
    return p.map((v) => v / s);
  };
  const argmax = (l: Float32Array) => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);
  for (let r = 0; r < reps; r++) {
    const lastLogits: Partial<Record<Precision, Float32Array[]>> = {};
    for (const p of PRECISIONS) {
      const model = models[p];
      const kv = model.createKvCache({ blockSize, numBlocks: blocks, dtype: 'bf16' });
      let t0 = performance.now();
      const logits = await model.forward([{ tokens, numCached: 0, blockTable: table }], kv).toFloat32();
      res[p].prefill.push(prompt / ((performance.now() - t0) / 1000));
      const seen = [logits];
      let next = argmax(logits);
      t0 = performance.now();
      for (let t = 0; t < steps; t++) {
        // Both precisions decode the exact run's tokens (the same inputs), so their logits compare position by position.
        const tok = p === 'fast' && lastLogits.exact ? argmax(lastLogits.exact[t]) : next;
        const l = await model.forward([{ tokens: [tok], numCached: prompt + t, blockTable: table }], kv).toFloat32();
        seen.push(l);
        next = argmax(l);
      }
      res[p].decode.push(steps / ((performance.now() - t0) / 1000));
      lastLogits[p] = seen;
      kv.dispose();
    }
    if (r === 0) {
      for (let i = 0; i < lastLogits.exact!.length; i++) {
        const a = lastLogits.exact![i], b = lastLogits.fast![i];
        agreement.positions++;
        agreement.top1Agree += argmax(a) === argmax(b) ? 1 : 0;
        const pa = softmax(a), pb = softmax(b);
        for (let j = 0; j < pa.length; j++) agreement.maxProbDiff = Math.max(agreement.maxProbDiff, Math.abs(pa[j] - pb[j]));
      }
    }
    console.error(`rep ${r}: ${PRECISIONS.map((p) => `${p} prefill ${res[p].prefill.at(-1)!.toFixed(1)} tok/s, decode ${res[p].decode.at(-1)!.toFixed(2)} tok/s`).join('; ')}`);
  }
  for (const p of PRECISIONS)
    modelRows.push({ precision: p, [`prefill ${prompt} tok/s (median)`]: Math.round(median(res[p].prefill) * 10) / 10, [`decode tok/s (median of ${reps}, ${steps} steps)`]: Math.round(median(res[p].decode) * 100) / 100 });
  for (const m of Object.values(models)) m.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
const isa = ['avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'avx_vnni', 'amx_bf16', 'amx_int8'].filter((f) => flags.split(' ').includes(f));
const info = {
  date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, isa,
  devices: { exact: devices.exact.description, fast: devices.fast.description }, fastInEffect: devices.fast.precision === 'fast',
  loadavgStart: loadStart, loadavgEnd: os.loadavg(), reps,
};
const result = { info, matmul: matmulRows, model: modelRows, logits: agreement };
console.log(JSON.stringify(result, null, 2));
if (outFile) writeFileSync(outFile, JSON.stringify(result, null, 2));
for (const d of Object.values(devices)) d.dispose();
