// The forced-variant hook of the variant harness (native/cuda/variants.h, bench/dev/variants.ts): a
// forced matmul path, tile height, split count or decode split count computes the same op (checked
// against float64) on cuda-sim and cuda:0, and a variant that cannot serve the call is refused by name.
import { afterEach, describe, expect, it } from 'vitest';
import { ops, type Device } from '../../src/runtime/index.js';
import { addon } from '../../src/runtime/native.js';
import { attentionRef, type CacheShape } from '../reference/attention.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { matmulRef } from '../reference/dense.js';
import { poisoned } from '../reference/poison.js';
import { Rng } from '../reference/random.js';
import { storedAs, type WeightType } from '../reference/rounding.js';
import { device, devicesUnderTest } from './devices.js';

type Forced = Parameters<typeof addon.setKernelVariants>[0];

async function matmul(dev: Device, w: WeightType, M: number, N: number, K: number, forced: Forced, tolerance: number) {
  const rng = new Rng(`variants ${w} ${M} ${N} ${K}`);
  const x = rng.normals(M * K);
  const wv = rng.normals(N * K, 1 / Math.sqrt(K));
  const y = dev.empty([M, N], 'f32');
  addon.setKernelVariants(forced);
  ops.matmul(dev.tensor(x, [M, K]), dev.tensor(wv, [N, K], w), y);
  assertClose(await y.read(), matmulRef(x, storedAs(wv, w), M, N, K), tolerance, 'y vs reference');
}

for (const dut of devicesUnderTest().filter((d) => d.name !== 'cpu')) {
  describe.skipIf(dut.skip !== false)(`forced kernel variants [${dut.label}]`, () => {
    afterEach(() => addon.setKernelVariants({}));

    it('GEMV at M = 20 (automatic: tensor cores)', () => matmul(device(dut.name), 'bf16', 20, 67, 136, { matmulPath: 0 }, TOLERANCE.f32));
    it('tensor cores at M = 3 (automatic: GEMV), BM = 128, 3 splits, unaligned K', () =>
      matmul(device(dut.name), 'bf16', 3, 67, 201, { matmulPath: 1, matmulTileM: 128, matmulSplits: 3 }, TOLERANCE.roundedActivations.bf16));
    it('SIMT f32 at M = 5', () => matmul(device(dut.name), 'f32', 5, 67, 37, { matmulPath: 2 }, TOLERANCE.f32));
    // GEMV with K split over the CTA's warps, or not, against the automatic choice at shapes where it
    // would pick the other one: partial vector sweeps (K = 1048 bf16 = 131 vectors), a partial last
    // row chunk (M = 13: chunks of 7), the scalar path (K = 1001), f32 rows.
    for (const [w, M, N, K] of [['bf16', 13, 29, 1048], ['bf16', 1, 300, 1048], ['f16', 2, 11, 1001], ['f32', 15, 9, 1036]] as const)
      for (const gemvKSlices of [1, 4])
        it(`GEMV ${w} M = ${M} N = ${N} K = ${K} with ${gemvKSlices} K slice(s)`, () =>
          matmul(device(dut.name), w, M, N, K, { matmulPath: 0, gemvKSlices }, TOLERANCE.f32));

    it('decode attention at each split count', async () => {
      const dev = device(dut.name);
      const rng = new Rng('variants decode');
      const ctx = 150;
      const cache: CacheShape = { numBlocks: 10, blockSize: 16, numKvHeads: 2, headDim: 64 };
      const numel = 10 * 16 * 2 * 64;
      const pools = { k: rng.normals(numel), v: rng.normals(numel) };
      const shape = [10, 16, 2, 64];
      const kv = { k: dev.tensor(pools.k, shape, 'bf16'), v: dev.tensor(pools.v, shape, 'bf16') };
      const q = rng.normals(4 * 64);
      const batch = { qStart: Int32Array.from([0, 1]), kvLen: Int32Array.from([ctx]), blockTables: rng.permutation(10), maxBlocksPerSeq: 10 };
      const ref = attentionRef({ cache, kPool: storedAs(pools.k, 'bf16'), vPool: storedAs(pools.v, 'bf16'), q, numQHeads: 4, ...batch, scale: 0.125 });
      // Splits merged in the decode launch (last-CTA ticket; automatic at G·D = 128) or by merge_kernel.
      for (const decodeSplits of [1, 2, 3])
        for (const decodeFusedMerge of [undefined, 1, 0]) {
          addon.setKernelVariants({ decodeSplits, decodeFusedMerge });
          const out = dev.empty([1, 4, 64], 'f32');
          ops.attention(kv, dev.tensor(q, [1, 4, 64]), out, batch, { scale: 0.125 });
          assertClose(await out.read(), ref, TOLERANCE.f32, `out with ${decodeSplits} split(s), fused merge ${decodeFusedMerge ?? 'auto'}`);
        }
    });

    it('decode attention at odd split counts, G = 5, odd contexts, poisoned output', async () => {
      const dev = device(dut.name);
      const rng = new Rng('variants decode odd');
      const [Hq, Hkv, D, blockSize] = [10, 2, 128, 11];
      const kvLen = Int32Array.from([389, 70, 1]);
      const maxBlocksPerSeq = Math.ceil(389 / blockSize);
      const numBlocks = maxBlocksPerSeq * 3;
      const cache: CacheShape = { numBlocks, blockSize, numKvHeads: Hkv, headDim: D };
      const numel = numBlocks * blockSize * Hkv * D;
      const pools = { k: rng.normals(numel), v: rng.normals(numel) };
      const shape = [numBlocks, blockSize, Hkv, D];
      const kv = { k: dev.tensor(pools.k, shape, 'bf16'), v: dev.tensor(pools.v, shape, 'bf16') };
      const q = rng.normals(3 * Hq * D);
      const batch = { qStart: Int32Array.from([0, 1, 2, 3]), kvLen, blockTables: rng.permutation(numBlocks), maxBlocksPerSeq };
      const ref = attentionRef({ cache, kPool: storedAs(pools.k, 'bf16'), vPool: storedAs(pools.v, 'bf16'), q, numQHeads: Hq, ...batch, scale: 0.09 });
      // G·D = 640: merge_kernel automatically, the fused merge (two column groups per thread) when forced.
      for (const decodeSplits of [1, 3, 5, 7])
        for (const decodeFusedMerge of [undefined, 1]) {
          addon.setKernelVariants({ decodeSplits, decodeFusedMerge });
          const out = poisoned(dev, [3, Hq, D]);
          ops.attention(kv, dev.tensor(q, [3, Hq, D]), out.tensor, batch, { scale: 0.09 });
          await out.checkGuards('out');
          assertClose(await out.tensor.read(), ref, TOLERANCE.f32, `out with ${decodeSplits} split(s), fused merge ${decodeFusedMerge ?? 'auto'}`);
        }
    });

    it('refuses a variant that cannot serve the call, by name', async () => {
      const dev = device(dut.name);
      const x = dev.tensor(new Float32Array(20 * 40).fill(1), [20, 40]);
      const y = dev.empty([20, 8], 'f32');
      const refused = async (forced: Forced, wt: 'bf16' | 'f32', pattern: RegExp) => {
        addon.setKernelVariants(forced);
        const w = dev.tensor(new Float32Array(8 * 40).fill(0.5), [8, 40], wt);
        await expect((async () => { ops.matmul(x, w, y); await y.read(); })()).rejects.toThrow(pattern);
      };
      await refused({ matmulPath: 2 }, 'bf16', /matmul: forced variant 2 cannot run: the SIMT kernel takes f32 weights/);
      await refused({ matmulPath: 1 }, 'f32', /tensor cores take bf16 \/ f16 weights/);
      await refused({ matmulPath: 1, matmulSplits: 9 }, 'bf16', /forced split count 9 outside 1\.\.2/);
      await refused({ matmulPath: 1, matmulTileM: 96 }, 'bf16', /forced tile height 96/);
      await refused({ matmulPath: 0, gemvKSlices: 2 }, 'bf16', /forced GEMV K slices 2 \(1 or 4\)/);
    });
  });
}
