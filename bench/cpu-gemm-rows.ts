// `npx tsx bench/cpu-gemm-rows.ts [--quick] [--precision exact|fast] [--label NAME] [--out FILE.json]`
// The CPU matmul across row counts (decode M = 1 through batched decode to prefill M = 512) at Qwen3-0.6B's
// shapes, bf16 weights: GFLOP/s per (M, N), and the MLP's gate/up projection with the SwiGLU epilogue
// against split matmul + swiglu. For a before/after comparison run it once per addon, back to back:
//   PARALON_ADDON=/path/to/old/paralon.node npx tsx bench/cpu-gemm-rows.ts --label before --out /tmp/before.json
//   npx tsx bench/cpu-gemm-rows.ts --label after --out /tmp/after.json
// and report both with `uptime`'s load average (the machine's other work moves these figures).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Device, ops, toBf16, type Tensor } from '../src/runtime/index.js';
import { randomValues } from './random-values.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const label = args[args.indexOf('--label') + 1] && args.includes('--label') ? args[args.indexOf('--label') + 1] : 'run';
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
// fast: bf16 activations (AMX tiles where the CPU has them; PARALON_CPU_AMX=0 for the AVX512-BF16 kernel).
const precision = args.includes('--precision') ? (args[args.indexOf('--precision') + 1] as 'exact' | 'fast') : 'exact';

const K = 1024;
const ROWS = quick ? [1, 16, 64, 512] : [1, 4, 9, 16, 33, 64, 65, 512];
const COLS = [1024, 2048, 3072, 151936];
const INTERMEDIATE = 3072;

const bf16 = (device: Device, shape: number[], seed: number): Tensor =>
  device.tensor(toBf16(randomValues(shape[0] * shape[1], seed)), shape, 'bf16');

/**
 * Runs `launch` back to back for ≥ 0.3 s (after one warm-up), median of 3 such batches: wall seconds per
 * launch, and the process's CPU-seconds per launch — on a shared machine the CPU time is the steadier
 * figure (GFLOP per CPU-second, i.e. per busy core), wall time what a user sees.
 */
async function measure(launch: () => void): Promise<{ wall: number; cpu: number }> {
  launch();
  await device.synchronize();
  let t0 = performance.now();
  launch();
  await device.synchronize();
  const per = Math.max((performance.now() - t0) / 1000, 1e-6);
  const n = Math.max(2, Math.min(500, Math.ceil(0.3 / per)));
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let b = 0; b < 3; b++) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < n; i++) launch();
    await device.synchronize();
    const c = process.cpuUsage(c0);
    walls.push((performance.now() - t0) / 1000 / n);
    cpus.push((c.user + c.system) / 1e6 / n);
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[1];
  return { wall: median(walls), cpu: median(cpus) };
}

const device = Device.open('cpu', { precision });
const threads = Number(/(\d+) threads?/.exec(device.description)?.[1] ?? os.cpus().length);
const rows: Record<string, string | number>[] = [];
const loadStart = os.loadavg()[0];
const round = (v: number) => Math.round(v * 10) / 10;
function add(op: string, M: number, N: number, t: { wall: number; cpu: number }) {
  const flop = 2 * M * N * K;
  rows.push({ label, op, M, N, K, 'wall µs': round(t.wall * 1e6), 'GFLOP/s (wall)': round(flop / t.wall / 1e9),
    'GFLOP/s per busy core (CPU time)': round(flop / t.cpu / 1e9) });
  console.error(`${label} ${op} M=${M} N=${N}: ${(t.wall * 1e6).toFixed(0)} µs, ${(flop / t.wall / 1e9).toFixed(1)} GFLOP/s wall, ${(flop / t.cpu / 1e9).toFixed(1)} per CPU-second`);
}
for (const N of COLS) {
  const w = bf16(device, [N, K], 3);
  for (const M of ROWS) {
    if (N === 151936 && M === 512) continue; // the lm_head runs on ≤ batch-size rows (prefill: the last token's)
    const x = device.tensor(randomValues(M * K, 5), [M, K]);
    const y = device.empty([M, N]);
    add('matmul bf16', M, N, await measure(() => ops.matmul(x, w, y)));
  }
}

// gate/up with the SwiGLU epilogue (where the build has it) vs split matmul + swiglu.
const gateUp = bf16(device, [2 * INTERMEDIATE, K], 9);
for (const M of quick ? [1, 16] : [1, 4, 16, 64, 512]) {
  const x = device.tensor(randomValues(M * K, 11), [M, K]);
  const gate = device.empty([M, INTERMEDIATE]);
  const up = device.empty([M, INTERMEDIATE]);
  const variants: [string, () => void][] = [['matmul [gate, up] + swiglu', () => {
    ops.matmul(x, gateUp, [gate, up]);
    ops.swiglu(gate, up, gate);
  }]];
  const fused = (() => {
    try {
      return device.supports('matmulSwiglu', 'bf16');
    } catch {
      return false; // an addon from before the epilogue
    }
  })();
  if (fused) variants.push(['matmul epilogue=swiglu', () => ops.matmul(x, gateUp, gate, { epilogue: 'swiglu' })]);
  for (const [name, run] of variants) add(`gate/up: ${name}`, M, 2 * INTERMEDIATE, await measure(run));
}

const flags = (await import('node:fs')).readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
const isa = ['avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'avx_vnni', 'amx_bf16', 'amx_int8'].filter((f) => flags.split(' ').includes(f));
const info = {
  label, date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, device: device.description, threads,
  isa, loadavgStart: loadStart, loadavgEnd: os.loadavg()[0],
};
console.log(JSON.stringify(info));
for (const r of rows) console.log(Object.values(r).join('\t'));
if (outFile) writeFileSync(outFile, JSON.stringify({ info, rows }, null, 2));
device.dispose();
