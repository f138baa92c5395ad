// `npx tsx bench/cpu-amx-rows.ts [--shapes MxN,...] [--k K] [--out FILE.json]`
// The three CPU kernels a bf16-weight matmul can take, interleaved in one process on three devices:
// exact (f32 activations), fast without AMX (PARALON_CPU_AMX=0: AVX512-BF16 vdpbf16ps) and fast with AMX
// (tdpbf16ps tiles where the CPU has them; the device description says what ran). Per (M, N): GFLOP per
// CPU-second (the steadier figure on a shared machine) and CPU-µs per matmul, best of 5 batches of 10.
// Finds the row count from which the AMX kernel pays (gemm.h kMinAmxRows). Report `uptime` with it.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Device, ops, toBf16 } from '../src/runtime/index.js';
import { randomValues } from './random-values.js';

const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const K = Number(arg('--k') ?? 1024);
const shapes = (arg('--shapes') ?? '1x3072,2x3072,3x3072,4x3072,9x3072,16x3072,33x1024,64x1024,512x1024,512x3072,1x151936,4x151936,16x151936,64x151936')
  .split(',')
  .map((s) => s.split('x').map(Number));
const exact = Device.open('cpu', { precision: 'exact', threads: 2 });
process.env.PARALON_CPU_AMX = '0';
const dot = Device.open('cpu', { precision: 'fast', threads: 2 });
delete process.env.PARALON_CPU_AMX;
const amx = Device.open('cpu', { precision: 'fast', threads: 2 });
const devices = { exact, 'fast (vdpbf16ps)': dot, 'fast (AMX)': amx } as const;
const loadStart = os.loadavg();
const rows: Record<string, string | number>[] = [];
for (const [M, N] of shapes) {
  const row: Record<string, string | number> = { M, N, K };
  for (const [name, d] of Object.entries(devices)) {
    const w = d.tensor(toBf16(randomValues(N * K, 3)), [N, K], 'bf16');
    const x = d.tensor(randomValues(M * K, 5), [M, K]);
    const y = d.empty([M, N]);
    ops.matmul(x, w, y);
    await d.synchronize();
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < 10; i++) ops.matmul(x, w, y);
      await d.synchronize();
      const c = process.cpuUsage(c0);
      best = Math.min(best, (c.user + c.system) / 1e6 / 10);
    }
    row[`${name} GFLOP/cpu-s`] = Math.round((2 * M * N * K) / best / 1e8) / 10;
    row[`${name} cpu-µs`] = Math.round(best * 1e6);
    [w, x, y].forEach((t) => t.dispose());
  }
  rows.push(row);
  console.log(Object.entries(row).map(([k, v]) => `${k} ${v}`).join(' | '));
}
const info = {
  date: new Date().toISOString(), cpu: os.cpus()[0]?.model, devices: Object.fromEntries(Object.entries(devices).map(([k, d]) => [k, d.description])),
  loadavgStart: loadStart, loadavgEnd: os.loadavg(),
};
console.log(JSON.stringify(info));
const out = arg('--out');
if (out) writeFileSync(out, JSON.stringify({ info, rows }, null, 2));
for (const d of Object.values(devices)) d.dispose();
