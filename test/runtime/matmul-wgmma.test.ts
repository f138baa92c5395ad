// The Hopper wgmma + TMA GEMM (native/cuda/matmul_wgmma.cu), forced through the variant hook
// (matmulPath 3): against float64 on awkward shapes — partial M, N and K tiles (TMA zero fill), one
// k-tile and many (the 3-stage ring wraps, mbarrier parities alternate), K not a multiple of 8 (W
// repacked), a residual aliasing the output — with the output poisoned first. On cuda-sim the
// simulator's wgmma/TMA model runs it under racecheck, memcheck, initcheck (vitest.config.ts) and a
// seeded random schedule; on cuda:0 it runs on compute capability 9 only (elsewhere the forced
// variant is refused, as checked below).
import { afterEach, describe, expect, it } from 'vitest';
import { ops, type Device } from '../../src/runtime/index.js';
import { addon } from '../../src/runtime/native.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { matmulRef } from '../reference/dense.js';
import { poisoned } from '../reference/poison.js';
import { Rng } from '../reference/random.js';
import { storedAs } from '../reference/rounding.js';
import { device, devicesUnderTest } from './devices.js';

process.env.PARALON_SIM_SCHEDULE_SEED ??= '3';

const WGMMA = 3;
const MMA = 1;

async function gemm(dev: Device, w: 'bf16' | 'f16', M: number, N: number, K: number, residual: boolean) {
  const rng = new Rng(`wgmma ${w} ${M} ${N} ${K}`);
  const x = rng.normals(M * K);
  const wv = rng.normals(N * K, 1 / Math.sqrt(K));
  const r = residual ? rng.normals(M * N) : undefined;
  const expected = matmulRef(x, storedAs(wv, w), M, N, K);
  if (r) for (let i = 0; i < expected.length; ++i) expected[i] += r[i];
  const xt = dev.tensor(x, [M, K]);
  const wt = dev.tensor(wv, [N, K], w);
  addon.setKernelVariants({ matmulPath: WGMMA });
  if (r) {
    const y = dev.tensor(r, [M, N]);
    ops.matmul(xt, wt, y, { residual: y }); // in place: residual aliases the output
    assertClose(await y.read(), expected, TOLERANCE.roundedActivations[w], 'y (+= residual) vs reference');
  } else {
    const y = poisoned(dev, [M, N]);
    ops.matmul(xt, wt, y.tensor);
    await y.checkGuards('y');
    assertClose(await y.tensor.read(), expected, TOLERANCE.roundedActivations[w], 'y vs reference');
  }
}

const shapes: [w: 'bf16' | 'f16', M: number, N: number, K: number, residual: boolean][] = [
  ['bf16', 200, 300, 136, false], // partial M, N and k tiles
  ['bf16', 131, 129, 520, true], // 9 k-tiles: the ring wraps three times; residual in place
  ['f16', 70, 136, 72, false], // one full + one partial k-tile
  ['bf16', 1, 5, 8, false], // a single element row, one k-tile mostly zero fill
  ['f16', 129, 140, 101, true], // K % 8 ≠ 0: W repacked to Kp = 104
];

for (const dut of devicesUnderTest().filter((d) => d.name !== 'cpu')) {
  describe.skipIf(dut.skip !== false)(`wgmma GEMM [${dut.label}]`, () => {
    afterEach(() => addon.setKernelVariants({}));
    const hopper = () => dut.name === 'cuda-sim' || device(dut.name).selfTest().some((r) => r.name.startsWith('wgmma'));

    for (const [w, M, N, K, residual] of shapes) {
      it(`${w} M = ${M} N = ${N} K = ${K}${residual ? ' + residual' : ''}`, async (ctx) => {
        if (!hopper()) return ctx.skip();
        await gemm(device(dut.name), w, M, N, K, residual);
      });
    }

    it('matches the mma.sync path at a prefill-like shape', async (ctx) => {
      if (!hopper()) return ctx.skip();
      const dev = device(dut.name);
      const [M, N, K] = [257, 384, 192];
      const rng = new Rng('wgmma vs mma');
      const xt = dev.tensor(rng.normals(M * K), [M, K]);
      const wt = dev.tensor(rng.normals(N * K, 0.1), [N, K], 'bf16');
      const out: Float32Array[] = [];
      for (const matmulPath of [WGMMA, MMA]) {
        addon.setKernelVariants({ matmulPath });
        const y = dev.empty([M, N], 'f32');
        ops.matmul(xt, wt, y);
        out.push(await y.read());
      }
      // Same rounded operands, f32 accumulation in a different order: agreement to f32 rounding.
      assertClose(out[0], out[1], 1e-5, 'wgmma vs mma.sync');
    });

    it('refuses f32 weights by name', async () => {
      const dev = device(dut.name);
      addon.setKernelVariants({ matmulPath: WGMMA });
      const y = dev.empty([20, 8], 'f32');
      const w = dev.tensor(new Float32Array(8 * 40).fill(0.5), [8, 40], 'f32');
      const x = dev.tensor(new Float32Array(20 * 40).fill(1), [20, 40]);
      await expect((async () => { ops.matmul(x, w, y); await y.read(); })()).rejects.toThrow(/forced variant 3 cannot run/);
    });
  });
}
