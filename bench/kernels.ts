// `npm run bench -- kernels [--device cpu|cuda|cuda-sim] [--model-shape 0.6b|8b] [--quick] [--quantized-only]
// [--cpu-precision exact|fast]`
// Every op at the shapes of a Qwen3 model: median time per launch, achieved GB/s or GFLOP/s, and the
// percentage of the ceiling measured in the same run (memory read bandwidth on the CPU; device-to-device
// copy bandwidth on CUDA). Weights are rotated across enough copies that caches do not flatter.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Device, dtypeBlock, dtypeByteLength, ops, quantDTypes, toBf16, type QuantDType, type Tensor } from '../src/runtime/index.js';
import { quantize } from '../src/quant/index.js';
import { addon } from '../src/runtime/native.js';
import { modelShapes, projections, type ModelShape } from './shapes.js';
import { runInfo, saveResults, markdownTable, checkQuiet, type Row } from './results.js';
import { timeLaunches } from './timing.js';
import { randomValues } from './random-values.js';

interface Options {
  device: string;
  shape: ModelShape;
  quick: boolean;
  /** Only the quantized matmuls (and the ceiling). */
  quantizedOnly: boolean;
  /** The CPU device's matmul precision (fast: bf16 activations, AMX tiles where the CPU has them). */
  precision: 'exact' | 'fast';
}

function randomTensor(device: Device, shape: number[], dtype: 'f32' | 'bf16', seed: number): Tensor {
  const values = randomValues(shape.reduce((a, b) => a * b, 1), seed);
  return dtype === 'bf16' ? device.tensor(toBf16(values), shape, 'bf16') : device.tensor(values, shape, 'f32');
}

/** Copies of a tensor filling at least `bytes`, so successive launches read memory, not cache. */
function rotation(device: Device, shape: number[], dtype: 'f32' | 'bf16', bytes: number): Tensor[] {
  const first = randomTensor(device, shape, dtype, 7);
  const copies = Math.max(1, Math.min(64, Math.ceil(bytes / first.byteLength)));
  const out = [first];
  for (let i = 1; i < copies; i++) out.push(ops.copy(device.empty(shape, dtype), first));
  return out;
}

/**
 * A [N, K] weight in `dtype`'s blocks: 64 rows quantized by the reference quantizer (src/quant, too
 * slow in JavaScript for whole matrices), repeated to N rows — the kernels' work does not depend on
 * the values.
 */
function quantizedTensor(device: Device, N: number, K: number, dtype: QuantDType, seed: number): Tensor {
  const rows = Math.min(64, N);
  const blocks = quantize(randomValues(rows * K, seed), dtype);
  const rowBytes = dtypeByteLength(dtype, K);
  const all = new Uint8Array(N * rowBytes);
  for (let n = 0; n < N; n += rows) all.set(blocks.subarray(0, Math.min(rows, N - n) * rowBytes), n * rowBytes);
  return device.tensor(all, [N, K], dtype);
}

/** Copies of a quantized weight filling at least `bytes`. */
function quantizedRotation(device: Device, N: number, K: number, dtype: QuantDType, bytes: number): Tensor[] {
  const first = quantizedTensor(device, N, K, dtype, 7);
  const copies = Math.max(1, Math.min(64, Math.ceil(bytes / first.byteLength)));
  const out = [first];
  for (let i = 1; i < copies; i++) out.push(ops.copy(device.empty([N, K], dtype), first));
  return out;
}

export async function measureCeiling(device: Device, threads: number): Promise<{ name: string; gbps: number }> {
  if (device.hostMemory) {
    return { name: `host memory read, ${threads} thread(s)`, gbps: addon.measureReadBandwidth(1 << 30, threads, 5) };
  }
  const bytes = 1 << 30;
  const a = device.empty([bytes / 4], 'f32');
  const b = device.empty([bytes / 4], 'f32');
  const t = await timeLaunches(device, () => ops.copy(b, a), { batches: 5 });
  a.dispose();
  b.dispose();
  // A copy reads and writes every byte.
  return { name: 'device-to-device copy (read + write)', gbps: (2 * bytes) / t.seconds / 1e9 };
}

export async function benchKernels(argv: string[]): Promise<void> {
  const opt = parseOptions(argv);
  const device = Device.open(opt.device as 'cpu', { precision: opt.precision });
  const threads = device.hostMemory ? os.cpus().length : 0;
  const rotateBytes = device.hostMemory ? 256 << 20 : 1 << 30;
  const s = opt.shape;
  console.log(`kernels on ${device.description}, ${s.name} shapes${opt.quick ? ' (quick)' : ''}`);
  if (device.hostMemory) await checkQuiet();
  const peak = await measureCeiling(device, threads);
  console.log(`ceiling: ${peak.name}: ${peak.gbps.toFixed(1)} GB/s`);
  const rows: Row[] = [];
  const t0 = performance.now();
  // Progress on stderr, a line per row as it is measured; the whole table goes to stdout at the end.
  const add = (row: Row) => {
    rows.push(row);
    const cells = Object.values(row).map((v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v));
    console.error(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${cells.filter((v) => v !== '').join('  ')}`);
  };

  // Quantized decode matmuls (ggml blocks read in place): GB/s of blocks read. With --quantized-only,
  // bf16 at the same M first, as the baseline of the same run.
  const weightTypes = opt.quantizedOnly ? (['bf16', ...quantDTypes] as const) : quantDTypes;
  for (const dtype of weightTypes) {
    if (!device.supports('matmul', dtype)) continue;
    for (const [name, N, K] of projections(s)) {
      if (K % dtypeBlock[dtype].elements !== 0) continue;
      const ws = dtype === 'bf16' ? rotation(device, [N, K], 'bf16', rotateBytes) : quantizedRotation(device, N, K, dtype, rotateBytes);
      for (const M of [1, 16]) {
        const x = randomTensor(device, [M, K], 'f32', 11);
        const y = device.empty([M, N], 'f32');
        const t = await timeLaunches(device, (i) => ops.matmul(x, ws[i % ws.length], y));
        const gbps = ws[0].byteLength / t.seconds / 1e9;
        add({ op: `matmul ${name} ${dtype}`, shape: `M=${M} N=${N} K=${K}`, us: t.seconds * 1e6, 'GB/s': gbps, 'GFLOP/s': (2 * M * N * K) / t.seconds / 1e9, '% ceiling': (100 * gbps) / peak.gbps });
        x.dispose();
        y.dispose();
      }
      ws.forEach((w) => w.dispose());
    }
  }
  if (opt.quantizedOnly) return finish(device, opt, peak, rotateBytes, rows);

  // Decode matmuls: memory-bound, GB/s of weights read.
  const decodeMs = opt.quick ? [1] : [1, 4, 8, 16, 32, 64];
  for (const [name, N, K] of projections(s)) {
    const ws = rotation(device, [N, K], 'bf16', rotateBytes);
    for (const M of decodeMs) {
      const x = randomTensor(device, [M, K], 'f32', 11);
      const y = device.empty([M, N], 'f32');
      const t = await timeLaunches(device, (i) => ops.matmul(x, ws[i % ws.length], y));
      const gbps = (N * K * 2) / t.seconds / 1e9;
      add({ op: `matmul ${name} bf16`, shape: `M=${M} N=${N} K=${K}`, us: t.seconds * 1e6, 'GB/s': gbps, 'GFLOP/s': (2 * M * N * K) / t.seconds / 1e9, '% ceiling': (100 * gbps) / peak.gbps });
      x.dispose();
      y.dispose();
    }
    ws.forEach((w) => w.dispose());
  }

  // Prefill matmuls: compute-bound, GFLOP/s.
  const prefillMs = device.hostMemory ? [512] : opt.quick ? [512] : [512, 1024, 4096];
  for (const [name, N, K] of projections(s).filter(([n]) => n !== 'lm_head')) {
    const w = randomTensor(device, [N, K], 'bf16', 3);
    for (const M of prefillMs) {
      const x = randomTensor(device, [M, K], 'f32', 5);
      const y = device.empty([M, N], 'f32');
      const t = await timeLaunches(device, () => ops.matmul(x, w, y), { batches: opt.quick || device.hostMemory ? 3 : 7, minBatchSeconds: 0.1 });
      add({ op: `matmul ${name} bf16`, shape: `M=${M} N=${N} K=${K}`, us: t.seconds * 1e6, 'GB/s': (N * K * 2 + M * K * 4 + M * N * 4) / t.seconds / 1e9, 'GFLOP/s': (2 * M * N * K) / t.seconds / 1e9, '% ceiling': '' });
      x.dispose();
      y.dispose();
    }
    w.dispose();
  }

  // RMSNorm over the hidden state: reads x and writes out (f32).
  for (const rowsN of [1, 512]) {
    const x = randomTensor(device, [rowsN, s.hidden], 'f32', 13);
    const w = randomTensor(device, [s.hidden], 'bf16', 17);
    const out = device.empty([rowsN, s.hidden], 'f32');
    const t = await timeLaunches(device, () => ops.rmsnorm(x, w, out, { eps: 1e-6 }));
    const gbps = (rowsN * s.hidden * 8) / t.seconds / 1e9;
    add({ op: 'rmsnorm', shape: `rows=${rowsN} dim=${s.hidden}`, us: t.seconds * 1e6, 'GB/s': gbps, 'GFLOP/s': '', '% ceiling': (100 * gbps) / peak.gbps });
    [x, w, out].forEach((a) => a.dispose());
  }

  // Decode attention: one query token per sequence over a context, bf16 cache; GB/s of K and V read.
  const contexts = device.hostMemory ? (opt.quick ? [512] : [512, 4096]) : opt.quick ? [4096] : [512, 4096, 32768];
  const blockSize = 16;
  for (const ctx of contexts) {
    const batch = 1;
    const numBlocks = Math.ceil(ctx / blockSize) * batch;
    const cacheShape = [numBlocks, blockSize, s.numKvHeads, s.headDim];
    const cache = { k: randomTensor(device, cacheShape, 'bf16', 19), v: randomTensor(device, cacheShape, 'bf16', 23) };
    const q = randomTensor(device, [batch, s.numHeads, s.headDim], 'f32', 29);
    const out = device.empty([batch, s.numHeads, s.headDim], 'f32');
    const maxBlocks = numBlocks / batch;
    const tables = Int32Array.from({ length: numBlocks }, (_, i) => i);
    const b = { qStart: Int32Array.from([0, 1]), kvLen: Int32Array.from([ctx]), blockTables: tables, maxBlocksPerSeq: maxBlocks };
    const t = await timeLaunches(device, () => ops.attention(cache, q, out, b));
    const bytes = 2 * ctx * s.numKvHeads * s.headDim * 2;
    const gbps = bytes / t.seconds / 1e9;
    add({ op: 'attention decode bf16 cache', shape: `ctx=${ctx} heads=${s.numHeads}/${s.numKvHeads} d=${s.headDim}`, us: t.seconds * 1e6, 'GB/s': gbps, 'GFLOP/s': '', '% ceiling': (100 * gbps) / peak.gbps });
    [cache.k, cache.v, q, out].forEach((a) => a.dispose());
  }

  // Prefill attention: one sequence of P new tokens (no cached prefix), bf16 cache; GFLOP/s of the
  // causal QKᵀ and PV products (query i attends i + 1 keys: 4·D·Hq·P(P+1)/2 FLOPs).
  const prompts = device.hostMemory || opt.quick ? [512] : [512, 2048, 8192];
  for (const P of prompts) {
    const numBlocks = Math.ceil(P / blockSize);
    const cacheShape = [numBlocks, blockSize, s.numKvHeads, s.headDim];
    const cache = { k: randomTensor(device, cacheShape, 'bf16', 37), v: randomTensor(device, cacheShape, 'bf16', 41) };
    const q = randomTensor(device, [P, s.numHeads, s.headDim], 'f32', 43);
    const out = device.empty([P, s.numHeads, s.headDim], 'f32');
    const tables = Int32Array.from({ length: numBlocks }, (_, i) => i);
    const b = { qStart: Int32Array.from([0, P]), kvLen: Int32Array.from([P]), blockTables: tables, maxBlocksPerSeq: numBlocks };
    const t = await timeLaunches(device, () => ops.attention(cache, q, out, b), { batches: opt.quick || device.hostMemory ? 3 : 7, minBatchSeconds: 0.1 });
    const flops = 2 * s.headDim * s.numHeads * P * (P + 1);
    add({ op: 'attention prefill bf16 cache', shape: `P=${P} heads=${s.numHeads}/${s.numKvHeads} d=${s.headDim}`, us: t.seconds * 1e6, 'GB/s': '', 'GFLOP/s': flops / t.seconds / 1e9, '% ceiling': '' });
    [cache.k, cache.v, q, out].forEach((a) => a.dispose());
  }

  // Sampling one row over the full vocabulary (top-p + top-k + temperature), ids back to the host.
  {
    const logits = randomTensor(device, [1, s.vocab], 'f32', 31);
    const scratch = device.empty([1, s.vocab], 'f32');
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      ops.copy(scratch, logits);
      const t0 = performance.now();
      await ops.sample(scratch, [{ temperature: 0.7, topP: 0.9, topK: 50, seed: 1, offset: i }]);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    add({ op: 'sample top-k 50, top-p 0.9', shape: `rows=1 vocab=${s.vocab}`, us: samples[10] * 1000, 'GB/s': '', 'GFLOP/s': '', '% ceiling': '' });
    logits.dispose();
    scratch.dispose();
  }

  finish(device, opt, peak, rotateBytes, rows);
}

function finish(device: Device, opt: Options, peak: { name: string; gbps: number }, rotateBytes: number, rows: Row[]): void {
  const name = `kernels-${device.name.replace(':', '')}-${opt.shape.name.toLowerCase()}${opt.quantizedOnly ? '-quantized' : ''}`;
  const flags = device.hostMemory ? `CPU SIMD flags: ${cpuSimdFlags()}. ` : '';
  const notes = `${flags}Ceiling: ${peak.name} = ${peak.gbps.toFixed(1)} GB/s, measured in this run. Decode matmuls read their weights (bf16, or ggml blocks for q8_0/q4_k/q5_k/q6_k) rotated over ≥ ${rotateBytes >> 20} MiB of copies; % ceiling = weight GB/s ÷ ceiling. Times are medians of batches of back-to-back launches.`;
  const files = saveResults(name, runInfo('kernels', device.description), { ceiling: peak, shape: opt.shape }, rows, notes);
  console.log('\n' + markdownTable(rows));
  console.log(`wrote ${files.join(', ')}`);
  device.dispose();
}

/** The SIMD extensions the CPU kernels may use, from /proc/cpuinfo (Linux). */
function cpuSimdFlags(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    const flags = line.split(':')[1]?.trim().split(/\s+/) ?? [];
    return flags.filter((f) => /^(avx|fma|f16c|amx)/.test(f)).sort().join(' ') || 'none reported';
  } catch {
    return 'unknown';
  }
}

function parseOptions(argv: string[]): Options {
  let device = 'cpu';
  let shape = '0.6b';
  let quick = false;
  let quantizedOnly = false;
  let precision = 'exact';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quantized-only') quantizedOnly = true;
    else if (a === '--device') device = argv[++i];
    else if (a === '--model-shape') shape = argv[++i];
    else if (a === '--quick') quick = true;
    else if (a === '--cpu-precision') precision = argv[++i];
    else throw new Error(`bench kernels: unknown option ${a}`);
  }
  if (!modelShapes[shape]) throw new Error(`--model-shape must be one of ${Object.keys(modelShapes).join(', ')}`);
  if (precision !== 'exact' && precision !== 'fast') throw new Error(`--cpu-precision must be exact or fast, not ${precision}`);
  return { device, shape: modelShapes[shape], quick, quantizedOnly, precision };
}
