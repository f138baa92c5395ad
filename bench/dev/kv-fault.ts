// Experiment: kvWrite of 512-token chunks (one layer of a Qwen3-0.6B-shaped bf16 cache) into fresh,
// never touched blocks of a pool vs the same blocks again: the first-touch page faults an engine pays
// when it hands out blocks a generation has not used before. `npx tsx bench/dev/kv-fault.ts`.
import { Device, ops } from '../../src/runtime/index.js';
const dev = Device.open('cpu', { threads: 1 });
const Hkv = 8, D = 128, BS = 16, T = 512, chunks = 24;
const numBlocks = (T / BS) * chunks;
const k = dev.empty([numBlocks, BS, Hkv, D], 'bf16');
const v = dev.empty([numBlocks, BS, Hkv, D], 'bf16');
const src = dev.tensor(Float32Array.from({ length: T * Hkv * D }, (_, i) => (i % 97) / 97), [T, Hkv, D]);
const time = async (c: number) => {
  const slots = Int32Array.from({ length: T }, (_, i) => c * T + i);
  await dev.synchronize();
  const t0 = performance.now();
  ops.kvWrite({ k, v }, src, src, slots);
  await dev.synchronize();
  return performance.now() - t0;
};
const fresh: number[] = [], again: number[] = [];
for (let c = 0; c < chunks; c++) { fresh.push(await time(c)); again.push(await time(c)); }
const q = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
console.log(`kvWrite of ${T} tokens (2 × ${(T * Hkv * D * 2) / 2 ** 20} MiB): fresh blocks ${q(fresh).toFixed(2)} ms, written before ${q(again).toFixed(2)} ms (means of ${chunks} chunks)`);
dev.dispose();
