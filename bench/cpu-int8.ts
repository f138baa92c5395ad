// `npx tsx bench/cpu-int8.ts [--reps 5] [--rows 1,16,512] [--types q8_0,q4_k,q6_k] [--out FILE.json]`
// Quantized CPU matmuls, CPU precision 'exact' (f32 activations × decoded blocks, quant_matmul.cc)
// against 'fast' (int8 activations and integer dot products, quant_int8.cc), interleaved rep by rep in
// one process on two CPU devices, at Qwen3-0.6B's matmul shapes (q|k|v, o, gate|up with the SwiGLU
// epilogue, down). Reports, per weight type and row count, the median wall time of one pass over the
// four matmuls and its CPU time (process CPU-seconds, less sensitive to other load than wall time),
// GB/s of weight bytes (decode: against the host read bandwidth measured here) and the fast/exact
// ratios. Load average printed with the figures.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Device, ops, type QuantDType, type Tensor } from '../src/runtime/index.js';
import { addon } from '../src/runtime/native.js';
import { quantize } from '../src/quant/index.js';
import { modelShapes } from './shapes.js';
import { randomValues } from './random-values.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const reps = Number(arg('--reps', '5'));
const rowCounts = arg('--rows', '1,16,512').split(',').map(Number);
const types = arg('--types', 'q8_0,q4_k,q6_k').split(',') as QuantDType[];
const outFile = args.includes('--out') ? arg('--out', '') : undefined;
const threads = Number(arg('--threads', '2'));
const shape = modelShapes['0.6b'];
const H = shape.hidden, I = shape.intermediate, Q = shape.numHeads * shape.headDim, KV = shape.numKvHeads * shape.headDim;
const devices = { exact: Device.open('cpu', { precision: 'exact', threads }), fast: Device.open('cpu', { precision: 'fast', threads }) };
console.error(`fast device: ${devices.fast.description}`);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

interface Layer {
  qkv: Tensor;
  o: Tensor;
  gateUp: Tensor;
  down: Tensor;
  bytes: number;
}

function layer(device: Device, w: QuantDType): Layer {
  const mat = (n: number, k: number, seed: number) => device.tensor(quantize(randomValues(n * k, seed), w), [n, k], w);
  const qkv = mat(Q + 2 * KV, H, 1), o = mat(H, Q, 2), gateUp = mat(2 * I, H, 3), down = mat(H, I, 4);
  return { qkv, o, gateUp, down, bytes: [qkv, o, gateUp, down].reduce((a, t) => a + t.byteLength, 0) };
}

/** One pass over a layer's four matmuls for M rows; returns [wall s, CPU s] per pass. */
async function pass(device: Device, l: Layer, M: number, io: Record<string, Tensor>, n: number): Promise<[number, number]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    ops.matmul(io.x, l.qkv, io.qkv);
    ops.matmul(io.attn, l.o, io.x);
    ops.matmul(io.x, l.gateUp, io.act, { epilogue: 'swiglu' });
    ops.matmul(io.act, l.down, io.x);
  }
  await device.synchronize();
  const wall = (performance.now() - t0) / 1000 / n;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1e6 / n];
}

const bandwidth = addon.measureReadBandwidth(1 << 30, threads, 3);
const load0 = os.loadavg();
const rows: Record<string, unknown>[] = [];
for (const w of types) {
  const layers = { exact: layer(devices.exact, w), fast: layer(devices.fast, w) };
  for (const M of rowCounts) {
    const io = Object.fromEntries(
      (['exact', 'fast'] as const).map((p) => {
        const d = devices[p];
        return [p, { x: d.tensor(randomValues(M * H, 5), [M, H]), attn: d.tensor(randomValues(M * Q, 6), [M, Q]), qkv: d.empty([M, Q + 2 * KV]), act: d.empty([M, I]) }];
      }),
    ) as unknown as Record<'exact' | 'fast', Record<string, Tensor>>;
    const n = M >= 256 ? 1 : M >= 16 ? 4 : 20;
    const t: Record<'exact' | 'fast', { wall: number[]; cpu: number[] }> = { exact: { wall: [], cpu: [] }, fast: { wall: [], cpu: [] } };
    for (const p of ['exact', 'fast'] as const) await pass(devices[p], layers[p], M, io[p], 1); // warm-up
    for (let r = 0; r < reps; r++)
      for (const p of ['exact', 'fast'] as const) {
        const [wall, cpu] = await pass(devices[p], layers[p], M, io[p], n);
        t[p].wall.push(wall);
        t[p].cpu.push(cpu);
      }
    const flops = 2 * M * (H * (Q + 2 * KV) + Q * H + 2 * I * H + I * H);
    const row = {
      w,
      M,
      'exact ms': 1e3 * median(t.exact.wall),
      'fast ms': 1e3 * median(t.fast.wall),
      'fast/exact speed (wall)': median(t.exact.wall) / median(t.fast.wall),
      'fast/exact speed (CPU s)': median(t.exact.cpu) / median(t.fast.cpu),
      'exact GB/s': layers.exact.bytes / median(t.exact.wall) / 1e9,
      'fast GB/s': layers.fast.bytes / median(t.fast.wall) / 1e9,
      'exact GFLOP/s': flops / median(t.exact.wall) / 1e9,
      'fast GFLOP/s': flops / median(t.fast.wall) / 1e9,
      load: os.loadavg()[0],
    };
    rows.push(row);
    console.log(Object.entries(row).map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`).join(' '));
  }
}
console.log(`host read bandwidth ${bandwidth.toFixed(1)} GB/s (${threads} threads); load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (outFile) writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0].model, fast: devices.fast.description, bandwidth, load0, loadEnd: os.loadavg(), rows }, null, 2));
devices.exact.dispose();
devices.fast.dispose();
