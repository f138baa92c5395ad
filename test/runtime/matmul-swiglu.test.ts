// The matmul's SwiGLU epilogue (an MLP's gate/up projection with silu(gate)·up in the store) against a
// float64 reference, on awkward sizes with poisoned outputs: float and quantized weights, one stacked
// [2·I, K] matrix or [gate, up], decode (streaming) and prefill (blocked) row counts. Also against the
// unfused ops (split matmul, then swiglu) on the same device, and the op's argument checks. A device
// that does not run the epilogue (supports('matmulSwiglu') false) has its cases registered as skipped
// with that reason, and must refuse the op with a clear error.
// On CUDA the cases reach each kernel's epilogue: the GEMV (M ≤ 16; scalar rows at K = 1001, K split
// over warps when few CTAs), the quantized GEMV (full 8-row chunks and a tail launch at M = 11), the
// mma.sync GEMM (M > 16; repacked unaligned W, split K with its swiglu reduce at M = 40, K = 1024 / 2048)
// and the SIMT f32 GEMM; forced variants put each shape through the paths it would not take by itself.
import { afterEach, describe, expect, it } from 'vitest';
import { ops, type Device, type DType, type QuantDType } from '../../src/runtime/index.js';
import { addon } from '../../src/runtime/native.js';
import { dequantize, quantize } from '../../src/quant/index.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { matmulRef, swigluRef } from '../reference/dense.js';
import { poisoned } from '../reference/poison.js';
import { Rng } from '../reference/random.js';
import { storedAs, type WeightType } from '../reference/rounding.js';
import { device, devicesUnderTest } from './devices.js';

type Layout = 'stacked' | 'parts';

interface SwigluCase {
  w: WeightType | QuantDType;
  M: number;
  I: number;
  K: number;
  layout: Layout;
}

const quantized = (w: DType): w is QuantDType => !['f32', 'bf16', 'f16'].includes(w);

const cases: SwigluCase[] = [
  ...(['f32', 'bf16', 'f16'] as const).flatMap((w) => [
    { w, M: 1, I: 75, K: 1001, layout: 'stacked' as Layout },
    { w, M: 3, I: 133, K: 96, layout: 'parts' as Layout },
    { w, M: 8, I: 37, K: 133, layout: 'stacked' as Layout },
    { w, M: 19, I: 75, K: 133, layout: 'parts' as Layout },
    { w, M: 130, I: 37, K: 300, layout: 'stacked' as Layout },
  ]),
  { w: 'bf16', M: 1, I: 3, K: 2053, layout: 'parts' },
  { w: 'q8_0', M: 1, I: 75, K: 96, layout: 'stacked' },
  { w: 'q8_0', M: 19, I: 37, K: 320, layout: 'parts' },
  { w: 'q4_k', M: 1, I: 37, K: 512, layout: 'parts' },
  { w: 'q4_k', M: 5, I: 75, K: 256, layout: 'stacked' },
  { w: 'q6_k', M: 23, I: 37, K: 256, layout: 'stacked' },
  { w: 'q5_k', M: 2, I: 13, K: 256, layout: 'parts' },
  { w: 'bf16', M: 40, I: 37, K: 1024, layout: 'stacked' },
  { w: 'f16', M: 17, I: 70, K: 520, layout: 'parts' },
  { w: 'bf16', M: 2, I: 9, K: 4104, layout: 'stacked' },
  { w: 'q8_0', M: 11, I: 21, K: 160, layout: 'stacked' },
  { w: 'q4_k', M: 40, I: 13, K: 2048, layout: 'parts' },
];

/** The forced variants (native/cuda/variants.h) each CUDA device also runs a case under. */
type Forced = Parameters<typeof addon.setKernelVariants>[0];
const forcedCases: { c: SwigluCase; forced: Forced }[] = [
  { c: { w: 'bf16', M: 20, I: 37, K: 136, layout: 'stacked' }, forced: { matmulPath: 0 } },
  { c: { w: 'bf16', M: 13, I: 29, K: 1048, layout: 'parts' }, forced: { matmulPath: 0, gemvKSlices: 4 } },
  { c: { w: 'f32', M: 3, I: 21, K: 1036, layout: 'stacked' }, forced: { matmulPath: 0, gemvKSlices: 1 } },
  { c: { w: 'bf16', M: 3, I: 67, K: 201, layout: 'stacked' }, forced: { matmulPath: 1, matmulTileM: 128, matmulSplits: 3 } },
  { c: { w: 'f16', M: 70, I: 45, K: 256, layout: 'parts' }, forced: { matmulPath: 1, matmulTileM: 64, matmulSplits: 2 } },
  { c: { w: 'f32', M: 5, I: 67, K: 37, layout: 'parts' }, forced: { matmulPath: 2 } },
];

const isCuda = (name: string) => name !== 'cpu';
/** CUDA's tensor-core paths (M > 16, or a forced mma path) round x to the weight's 16-bit type (f16 for quantized W). */
function tolerance(dev: string, c: SwigluCase, forced: Forced = {}): number {
  const tensorCores = forced.matmulPath === undefined ? c.M > 16 : forced.matmulPath === 1;
  if (!isCuda(dev) || !tensorCores || c.w === 'f32') return TOLERANCE.f32;
  return c.w === 'bf16' ? TOLERANCE.roundedActivations.bf16 : TOLERANCE.roundedActivations.f16;
}

function nameOf(c: SwigluCase, forced?: Forced): string {
  const f = forced ? `,forced=${JSON.stringify(forced)}` : '';
  return `matmul(epilogue=swiglu,w=${c.w},M=${c.M},I=${c.I},K=${c.K},${c.layout}${f})`;
}

/** Inputs and the float64 reference of one case (the weights as the device stores them). */
function build(c: SwigluCase) {
  const rng = new Rng(nameOf(c));
  const x = rng.normals(c.M * c.K);
  const halves = [0, 1].map(() => rng.normals(c.I * c.K, 1.5 / Math.sqrt(c.K)));
  const stored = halves.map((h) => (quantized(c.w) ? quantize(h, c.w) : h));
  const asUsed = stored.map((s) => (quantized(c.w) ? dequantize(s as Uint8Array, c.w) : storedAs(s as Float32Array, c.w as WeightType)));
  const gate = matmulRef(x, asUsed[0], c.M, c.I, c.K);
  const up = matmulRef(x, asUsed[1], c.M, c.I, c.K);
  return { x, stored, expected: swigluRef(gate, up) };
}

function weights(dev: Device, c: SwigluCase, stored: (Float32Array | Uint8Array)[]) {
  if (c.layout === 'parts') return stored.map((s) => dev.tensor(s, [c.I, c.K], c.w));
  if (quantized(c.w)) {
    const both = new Uint8Array(stored[0].length + stored[1].length);
    both.set(stored[0] as Uint8Array, 0);
    both.set(stored[1] as Uint8Array, stored[0].length);
    return dev.tensor(both, [2 * c.I, c.K], c.w);
  }
  const both = new Float32Array(2 * c.I * c.K);
  both.set(stored[0] as Float32Array, 0);
  both.set(stored[1] as Float32Array, c.I * c.K);
  return dev.tensor(both, [2 * c.I, c.K], c.w);
}

/** The fused op against float64 and against the unfused ops (split matmul, then swiglu) on the same device. */
async function runCase(dev: Device, c: SwigluCase, tol: number) {
  const { x, stored, expected } = build(c);
  const xt = dev.tensor(x, [c.M, c.K]);
  const w = weights(dev, c, stored);
  const out = poisoned(dev, [c.M, c.I]);
  ops.matmul(xt, w, out.tensor, { epilogue: 'swiglu' });
  await out.checkGuards('out');
  const fused = await out.tensor.read();
  assertClose(fused, expected, tol, 'out vs reference');
  // The unfused ops on the same device: the same products, so equal up to the activation's rounding
  // (on CUDA up to the order of the K sums too: a fused tile covers half the columns, so its split-K
  // count may differ from the unfused matmul's).
  const gate = dev.empty([c.M, c.I]);
  const up = dev.empty([c.M, c.I]);
  ops.matmul(xt, w, [gate, up]);
  ops.swiglu(gate, up, gate);
  assertClose(fused, await gate.read(), isCuda(dev.name) ? TOLERANCE.f32 : TOLERANCE.elementwise, 'out vs matmul + swiglu');
}

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`matmul swiglu epilogue [${dut.label}]`, () => {
    for (const c of cases) {
      const title = `${nameOf(c)} [${dut.name}]`;
      const unsupported = () => !device(dut.name).supports('matmulSwiglu', c.w);
      it(title, async (t) => {
        const dev = device(dut.name);
        if (unsupported()) {
          t.skip(`skipped: the ${dev.name} backend does not run the swiglu epilogue (supports('matmulSwiglu', '${c.w}') is false)`);
        }
        await runCase(dev, c, tolerance(dut.name, c));
      });
    }

    if (isCuda(dut.name)) {
      describe('forced variants', () => {
        afterEach(() => addon.setKernelVariants({}));
        for (const { c, forced } of forcedCases) {
          it(`${nameOf(c, forced)} [${dut.name}]`, async () => {
            addon.setKernelVariants(forced);
            await runCase(device(dut.name), c, tolerance(dut.name, c, forced));
          });
        }
      });
    }

    it(`refuses bad arguments with a clear error [${dut.name}]`, () => {
      const dev = device(dut.name);
      const x = dev.tensor(new Float32Array(2 * 8).fill(1), [2, 8]);
      const w = dev.tensor(new Float32Array(6 * 8).fill(1), [6, 8]);
      const out = dev.empty([2, 3]);
      if (!dev.supports('matmulSwiglu', 'f32')) {
        expect(() => ops.matmul(x, w, out, { epilogue: 'swiglu' })).toThrow(/swiglu epilogue .* not supported on the/);
        return;
      }
      const odd = dev.tensor(new Float32Array(5 * 8).fill(1), [5, 8]);
      expect(() => ops.matmul(x, odd, out, { epilogue: 'swiglu' })).toThrow(/even number of rows/);
      expect(() => ops.matmul(x, w, dev.empty([2, 6]), { epilogue: 'swiglu' })).toThrow(/must be \[2, 3\]/);
      expect(() => ops.matmul(x, w, out, { epilogue: 'swiglu', residual: out })).toThrow(/no residual/);
      expect(() => ops.matmul(x, w, [out], { epilogue: 'swiglu' })).toThrow(/one output tensor/);
      const g = dev.tensor(new Float32Array(3 * 8).fill(1), [3, 8]);
      const u = dev.tensor(new Float32Array(3 * 8).fill(1), [3, 8], 'bf16');
      expect(() => ops.matmul(x, [g, u], out, { epilogue: 'swiglu' })).toThrow(/one dtype and shape/);
      expect(() => (ops.matmul as (...a: unknown[]) => unknown)(x, w, out, { epilogue: 'gelu' })).toThrow(/epilogue must be 'swiglu'/);
    });
  });
}
