// Experiment: one Qwen3-0.6B-shaped decode attention (16 query heads, 8 KV heads, D 128, bf16 cache)
// at a long context, hot (its K/V just read) vs cold (caches evicted by copying 600 MiB first, as a
// decode step's weights do between two calls of a layer); 12th percentiles of 100 tries each.
// `THREADS=1 npx tsx bench/dev/attention-cold.ts <context> <pool blocks> [scatter]`
// (PARALON_ADDON=<file> to compare builds, one process each, alternating).
import { Device, ops } from '../../src/runtime/index.js';
const dev = Device.open('cpu', { threads: Number(process.env.THREADS ?? 2) });
const Hq = 16, Hkv = 8, D = 128, BS = 16;
const ctx = Number(process.argv[2] ?? 512);
const numBlocks = Number(process.argv[3] ?? 64);
const scatter = process.argv[4] === 'scatter';
const blocks = Math.ceil(ctx / BS);
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const k = dev.tensor(rnd(numBlocks * BS * Hkv * D), [numBlocks, BS, Hkv, D], 'bf16');
const v = dev.tensor(rnd(numBlocks * BS * Hkv * D), [numBlocks, BS, Hkv, D], 'bf16');
const q = dev.tensor(rnd(Hq * D), [1, Hq, D]);
const out = dev.empty([1, Hq, D]);
const table = Int32Array.from({ length: blocks }, (_, j) => (scatter ? (j * 37) % numBlocks : j));
const batch = { qStart: Int32Array.of(0, 1), kvLen: Int32Array.of(ctx), blockTables: table, maxBlocksPerSeq: blocks };
const big = dev.empty([600 * 2 ** 20 / 4]);
const big2 = dev.empty([600 * 2 ** 20 / 4]);
const time = async (evict: boolean) => {
  if (evict) ops.copy(big2, big);
  await dev.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < 1; i++) ops.attention({ k, v }, q, out, batch);
  await dev.synchronize();
  return performance.now() - t0;
};
const hot: number[] = [], cold: number[] = [];
for (let r = 0; r < 100; r++) { cold.push(await time(true)); hot.push(await time(false)); }
const med = (x: number[]) => x.sort((a, b) => a - b)[x.length >> 3] * 1000; // 12th percentile: the least disturbed runs
console.log(`ctx ${ctx} ${scatter ? 'scattered' : 'in order'}: hot ${med(hot).toFixed(0)} µs, cold ${med(cold).toFixed(0)} µs`);
dev.dispose();
