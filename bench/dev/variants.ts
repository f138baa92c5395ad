// `npm run bench -- variants [--device cuda:0|cuda-sim] [--model-shape 0.6b|8b]`: every variant of
// the CUDA matmul and decode-attention kernels forced in turn (native/cuda/variants.h) — GEMV (its
// warps on separate rows, or splitting K over one row group), the
// tensor-core GEMM at both tile heights and several split-K counts, the SIMT f32 GEMM (each also with
// the SwiGLU epilogue on the MLP's gate/up shape), decode attention at several KV split counts with
// the splits merged in the same launch (last-CTA ticket) or by a second one — each checked against
// the float64 reference at every launch shape and
// timed, llm.c's dev/cuda style: so crossovers such as "GEMV up to M = 16" are settled by measurement.
// On cuda-sim the shapes are small and awkward and nothing is timed (the check is the point there); on
// a GPU the shapes are the model's and each row gives µs, GB/s and TFLOP/s.
import { Device, ops, type Tensor } from '../../src/runtime/index.js';
import { addon } from '../../src/runtime/native.js';
import { attentionRef, type CacheShape } from '../../test/reference/attention.js';
import { compare, TOLERANCE } from '../../test/reference/compare.js';
import { matmulRef, swigluRef } from '../../test/reference/dense.js';
import { Rng } from '../../test/reference/random.js';
import { storedAs, type WeightType } from '../../test/reference/rounding.js';
import { markdownTable, runInfo, saveResults, type Row } from '../results.js';
import { modelShapes, projections, type ModelShape } from '../shapes.js';
import { timeLaunches } from '../timing.js';

interface Variant {
  label: string;
  matmulPath?: number;
  matmulTileM?: number;
  matmulSplits?: number;
  gemvKSlices?: number;
  decodeSplits?: number;
  /** Decode attention with splits: 1 merges in the decode launch, 0 in merge_kernel. */
  decodeFusedMerge?: number;
}

const GEMV = 0;
const MMA = 1;
const SIMT = 2;
const WGMMA = 3;

function matmulVariants(w: WeightType): Variant[] {
  const gemv: Variant[] = [
    { label: 'gemv', matmulPath: GEMV },
    { label: 'gemv k-slices=1', matmulPath: GEMV, gemvKSlices: 1 },
    { label: 'gemv k-slices=4', matmulPath: GEMV, gemvKSlices: 4 },
  ];
  if (w === 'f32') return [...gemv, { label: 'simt', matmulPath: SIMT }];
  const out: Variant[] = [...gemv];
  for (const tileM of [64, 128]) {
    out.push({ label: `mma BM=${tileM} splits=auto`, matmulPath: MMA, matmulTileM: tileM });
    for (const splits of [1, 2, 4, 8]) out.push({ label: `mma BM=${tileM} splits=${splits}`, matmulPath: MMA, matmulTileM: tileM, matmulSplits: splits });
  }
  out.push({ label: 'wgmma (Hopper)', matmulPath: WGMMA });
  return out;
}

function force(v: Variant): void {
  addon.setKernelVariants({
    matmulPath: v.matmulPath, matmulTileM: v.matmulTileM, matmulSplits: v.matmulSplits, gemvKSlices: v.gemvKSlices, decodeSplits: v.decodeSplits,
    decodeFusedMerge: v.decodeFusedMerge,
  });
}

/** Seconds per launch on hardware; undefined on the simulator (its time says nothing). */
async function timed(device: Device, launch: () => void): Promise<number | undefined> {
  if (device.name === 'cuda-sim') {
    launch();
    await device.synchronize();
    return undefined;
  }
  return (await timeLaunches(device, launch, { batches: 5 })).seconds;
}

async function matmulRows(device: Device, shapes: [string, number, number][], ms: number[], w: WeightType): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [name, N, K] of shapes) {
    const rng = new Rng(`variants ${name} ${N} ${K} ${w}`);
    const wv = rng.normals(N * K, 1 / Math.sqrt(K));
    const wt = device.tensor(wv, [N, K], w);
    const wRef = storedAs(wv, w);
    for (const M of ms) {
      const x = rng.normals(M * K);
      const xt = device.tensor(x, [M, K]);
      const y = device.empty([M, N], 'f32');
      const ref = matmulRef(x, wRef, M, N, K);
      for (const v of matmulVariants(w)) {
        // Tensor cores round x to the weight's type; GEMV and SIMT keep it in f32.
        const tol = v.matmulPath === MMA || v.matmulPath === WGMMA ? TOLERANCE.roundedActivations[w as 'bf16' | 'f16'] : TOLERANCE.f32;
        const row: Row = { op: `matmul ${name} ${w}`, shape: `M=${M} N=${N} K=${K}`, variant: v.label };
        try {
          force(v);
          const seconds = await timed(device, () => ops.matmul(xt, wt, y));
          const err = compare(await y.read(), ref).maxRel;
          const bytes = N * K * (w === 'f32' ? 4 : 2) + M * K * 4 + M * N * 4;
          Object.assign(row, {
            'max rel err': err, status: err <= tol ? 'pass' : `FAIL (tolerance ${tol})`,
            us: seconds === undefined ? '' : seconds * 1e6,
            'GB/s': seconds === undefined ? '' : bytes / seconds / 1e9,
            'TFLOP/s': seconds === undefined ? '' : (2 * M * N * K) / seconds / 1e12,
          });
        } catch (e) {
          const message = (e as Error).message.split('\n')[0];
          // A forced variant that cannot serve the shape (e.g. more splits than k-tiles) is refused by name.
          Object.assign(row, { 'max rel err': '', status: /forced/.test(message) ? `n/a: ${message}` : `ERROR: ${message}`, us: '', 'GB/s': '', 'TFLOP/s': '' });
        } finally {
          force({ label: 'auto' });
        }
        rows.push(row);
        console.error(`  ${row.op} ${row.shape} ${row.variant}: ${row.status}`);
      }
      [xt, y].forEach((t) => t.dispose());
    }
    wt.dispose();
  }
  return rows;
}

/**
 * The SwiGLU epilogue (y = silu(x·gateᵀ) · x·upᵀ, one [2I, K] stacked matrix) through every matmul
 * variant: the same kernels with the gate/up pairing in their store. Bytes: W (2I rows) + x + y (I).
 */
async function swigluRows(device: Device, I: number, K: number, ms: number[], w: WeightType): Promise<Row[]> {
  const rows: Row[] = [];
  const rng = new Rng(`variants swiglu ${I} ${K} ${w}`);
  const wv = rng.normals(2 * I * K, 1 / Math.sqrt(K));
  const wt = device.tensor(wv, [2 * I, K], w);
  const wRef = storedAs(wv, w);
  for (const M of ms) {
    const x = rng.normals(M * K);
    const xt = device.tensor(x, [M, K]);
    const y = device.empty([M, I], 'f32');
    const ref = swigluRef(matmulRef(x, wRef.subarray(0, I * K), M, I, K), matmulRef(x, wRef.subarray(I * K), M, I, K));
    for (const v of matmulVariants(w)) {
      const tol = v.matmulPath === MMA ? TOLERANCE.roundedActivations[w as 'bf16' | 'f16'] : TOLERANCE.f32;
      const row: Row = { op: `matmul+swiglu ${w}`, shape: `M=${M} I=${I} K=${K}`, variant: v.label };
      try {
        force(v);
        const seconds = await timed(device, () => ops.matmul(xt, wt, y, { epilogue: 'swiglu' }));
        const err = compare(await y.read(), ref).maxRel;
        const bytes = 2 * I * K * (w === 'f32' ? 4 : 2) + M * K * 4 + M * I * 4;
        Object.assign(row, {
          'max rel err': err, status: err <= tol ? 'pass' : `FAIL (tolerance ${tol})`,
          us: seconds === undefined ? '' : seconds * 1e6,
          'GB/s': seconds === undefined ? '' : bytes / seconds / 1e9,
          'TFLOP/s': seconds === undefined ? '' : (4 * M * I * K) / seconds / 1e12,
        });
      } catch (e) {
        const message = (e as Error).message.split('\n')[0];
        Object.assign(row, { 'max rel err': '', status: /forced/.test(message) ? `n/a: ${message}` : `ERROR: ${message}`, us: '', 'GB/s': '', 'TFLOP/s': '' });
      } finally {
        force({ label: 'auto' });
      }
      rows.push(row);
      console.error(`  ${row.op} ${row.shape} ${row.variant}: ${row.status}`);
    }
    [xt, y].forEach((t) => t.dispose());
  }
  wt.dispose();
  return rows;
}

async function decodeRows(device: Device, s: Pick<ModelShape, 'numHeads' | 'numKvHeads' | 'headDim'>, contexts: number[]): Promise<Row[]> {
  const rows: Row[] = [];
  const blockSize = 16;
  for (const ctx of contexts) {
    const rng = new Rng(`variants decode ${ctx}`);
    const cache: CacheShape = { numBlocks: Math.ceil(ctx / blockSize), blockSize, numKvHeads: s.numKvHeads, headDim: s.headDim };
    const numel = cache.numBlocks * blockSize * s.numKvHeads * s.headDim;
    const pools = { k: rng.normals(numel), v: rng.normals(numel) };
    const poolShape = [cache.numBlocks, blockSize, s.numKvHeads, s.headDim];
    const kv: { k: Tensor; v: Tensor } = { k: device.tensor(pools.k, poolShape, 'bf16'), v: device.tensor(pools.v, poolShape, 'bf16') };
    const q = rng.normals(s.numHeads * s.headDim);
    const qt = device.tensor(q, [1, s.numHeads, s.headDim]);
    const out = device.empty([1, s.numHeads, s.headDim], 'f32');
    const blockTables = rng.permutation(cache.numBlocks);
    const batch = { qStart: Int32Array.from([0, 1]), kvLen: Int32Array.from([ctx]), blockTables, maxBlocksPerSeq: cache.numBlocks };
    const scale = 1 / Math.sqrt(s.headDim);
    const ref = attentionRef({ cache, kPool: storedAs(pools.k, 'bf16'), vPool: storedAs(pools.v, 'bf16'), q, numQHeads: s.numHeads, ...batch, scale });
    const tiles = Math.ceil(ctx / 64);
    const counts = [1, 2, 4, 8, 16, 32].filter((n) => n <= tiles);
    const variants: Variant[] = [
      { label: 'splits=auto' },
      ...counts.map((n) => ({ label: `splits=${n}`, decodeSplits: n })),
      // With splits, the merge in the decode launch (last-CTA ticket) or in merge_kernel.
      ...counts.filter((n) => n > 1).flatMap((n) => [
        { label: `splits=${n} fused merge`, decodeSplits: n, decodeFusedMerge: 1 },
        { label: `splits=${n} merge kernel`, decodeSplits: n, decodeFusedMerge: 0 },
      ]),
    ];
    for (const v of variants) {
      const row: Row = { op: 'attention decode bf16', shape: `ctx=${ctx} heads=${s.numHeads}/${s.numKvHeads} d=${s.headDim}`, variant: v.label };
      try {
        force(v);
        const seconds = await timed(device, () => ops.attention(kv, qt, out, batch, { scale }));
        const err = compare(await out.read(), ref).maxRel;
        const bytes = 2 * ctx * s.numKvHeads * s.headDim * 2;
        Object.assign(row, {
          'max rel err': err, status: err <= TOLERANCE.f32 ? 'pass' : `FAIL (tolerance ${TOLERANCE.f32})`,
          us: seconds === undefined ? '' : seconds * 1e6,
          'GB/s': seconds === undefined ? '' : bytes / seconds / 1e9, 'TFLOP/s': '',
        });
      } catch (e) {
        Object.assign(row, { 'max rel err': '', status: `ERROR: ${(e as Error).message.split('\n')[0]}`, us: '', 'GB/s': '', 'TFLOP/s': '' });
      } finally {
        force({ label: 'auto' });
      }
      rows.push(row);
      console.error(`  ${row.op} ${row.shape} ${row.variant}: ${row.status}`);
    }
    [kv.k, kv.v, qt, out].forEach((t) => t.dispose());
  }
  return rows;
}

/** Runs every variant; returns the rows and how many failed their check (refusals are not failures). */
export async function benchVariants(argv: string[]): Promise<{ rows: Row[]; failures: number }> {
  let deviceName = 'cuda:0';
  let shape = modelShapes['0.6b'];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--device') deviceName = argv[++i];
    else if (argv[i] === '--model-shape') shape = modelShapes[argv[++i]];
    else throw new Error(`variants: unknown option ${argv[i]}`);
  }
  const device = Device.open(deviceName as 'cuda');
  const simulated = device.name === 'cuda-sim';
  console.error(`kernel variants on ${device.description}${simulated ? ' (checks only; nothing is timed)' : ''}`);
  const rows: Row[] = [];
  try {
    if (simulated) {
      // Awkward sizes: N not a tile multiple, K odd (unaligned rows: scalar GEMV, repacked W) and even.
      // K = 1032: 4 lane sweeps of bf16 vectors (K slices apply) with a partial last sweep.
      for (const w of ['bf16', 'f32'] as WeightType[]) rows.push(...(await matmulRows(device, [['proj', 135, 520], ['odd', 70, 257], ['narrow', 13, 1032]], [1, 9, 33], w)));
      for (const w of ['bf16', 'f32'] as WeightType[]) rows.push(...(await swigluRows(device, 67, 520, [1, 9, 33], w)));
      rows.push(...(await decodeRows(device, { numHeads: 4, numKvHeads: 2, headDim: 64 }, [200])));
      rows.push(...(await decodeRows(device, { numHeads: 10, numKvHeads: 2, headDim: 128 }, [261])));
    } else {
      rows.push(...(await matmulRows(device, projections(shape), [1, 4, 8, 12, 16, 24, 32, 64], 'bf16')));
      rows.push(...(await swigluRows(device, shape.intermediate, shape.hidden, [1, 8, 16, 32, 64], 'bf16')));
      rows.push(...(await decodeRows(device, shape, [512, 4096, 32768])));
      // GQA 4 (Qwen3-8B's 32/8 heads): the decode kernel's next register budget.
      if (shape !== modelShapes['8b']) rows.push(...(await decodeRows(device, modelShapes['8b'], [4096, 32768])));
    }
  } finally {
    device.dispose();
  }
  return { rows, failures: rows.filter((r) => String(r.status).startsWith('FAIL') || String(r.status).startsWith('ERROR')).length };
}

/** Prints the table and stores it in bench/results/ (kernel-variants-<device>). */
export function reportVariants(deviceName: string, rows: Row[]): void {
  console.log(markdownTable(rows));
  saveResults(`kernel-variants-${deviceName.replace(':', '')}`, runInfo('kernel variants', deviceName), {}, rows,
    deviceName === 'cuda-sim' ? 'Simulator run: every variant checked against float64, nothing timed.' : 'Every variant forced in turn; GB/s counts W + x + y bytes once.');
}

/** The bench command; exit status 1 when a variant failed its check. */
export async function runVariants(argv: string[]): Promise<void> {
  const at = argv.indexOf('--device');
  const deviceName = at >= 0 ? argv[at + 1] : 'cuda:0';
  const { rows, failures } = await benchVariants(argv);
  reportVariants(deviceName, rows);
  console.log(failures === 0 ? 'every variant matches the float64 reference' : `${failures} variant(s) FAILED`);
  if (failures > 0) process.exitCode = 1;
}
