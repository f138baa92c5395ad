// CPU precision 'fast' with quantized weights (Q8_0, Q4_K, Q5_K, Q6_K) on AMX-BF16 tiles
// (native/cpu/matmul_amx.cc), from 17 x rows (fewer take the int8 kernels, int8-dot.test.ts): each
// unit's W rows are dequantized and rounded to bf16, then multiplied like bf16 weights. Checked
// against float64 twice on awkward M/N (K whole blocks): against the product of bf16(x) and
// bf16(dequantized W) at f32 accumulation tolerance, and against the exact product of the
// dequantized W within the rounding of both operands (|Δy| ≤ 2·2⁻⁹·Σ|x·w|, room of 2). Outputs
// poisoned with NaN. Skipped, with the reason, where the CPU has no AMX.
import { afterAll, describe, expect, it } from 'vitest';
import { Device, fromBf16, ops, toBf16, type QuantDType } from '../../src/runtime/index.js';
import { dequantize, quantize } from '../../src/quant/index.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { matmulRef, swigluRef } from '../reference/dense.js';
import { moeMatmulRef } from '../reference/moe.js';
import { Rng } from '../reference/random.js';

const device = Device.open('cpu', { precision: 'fast', threads: 2 });
afterAll(() => device.dispose());
const skip = device.description.includes('AMX-BF16 tiles') ? false : `no AMX-BF16 here (${device.description})`;
const bf16 = (v: ArrayLike<number>) => fromBf16(toBf16(Float32Array.from(v)));

/** max over outputs of |got − exact| / (2⁻⁸ · Σ|x·w|): ≤ 1 within the operands' rounding. */
function roundingRatio(got: Float32Array, x: ArrayLike<number>, w: ArrayLike<number>, M: number, N: number, K: number, exact: Float64Array): number {
  let worst = 0;
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let abs = 0;
      for (let k = 0; k < K; k++) abs += Math.abs(x[m * K + k] * w[n * K + k]);
      worst = Math.max(worst, Math.abs(got[m * N + n] - exact[m * N + n]) / (2 ** -8 * abs + 1e-30));
    }
  return worst;
}

const types: [QuantDType, number][] = [['q8_0', 32 * 13], ['q4_k', 512], ['q5_k', 256], ['q6_k', 768]];

describe.skipIf(skip !== false)(`fast precision, quantized weights on AMX tiles${skip ? ` (skipped: ${skip})` : ''}`, () => {
  for (const [type, K] of types)
    for (const [M, N, residual] of [[17, 37, false], [43, 61, true], [300, 45, false]] as const)
      it(`${type} M=${M} N=${N} K=${K}${residual ? ' +residual' : ''}`, async () => {
        const rng = new Rng(`amx-quant ${type} ${M} ${N}`);
        const x = rng.normals(M * K, 1);
        const blocks = quantize(rng.normals(N * K, 1 / Math.sqrt(K)), type);
        const w = dequantize(blocks, type);
        const r = residual ? rng.normals(M * N, 1) : undefined;
        const y = device.tensor(new Float32Array(M * N).fill(NaN), [M, N]);
        ops.matmul(device.tensor(x, [M, K]), device.tensor(blocks, [N, K], type), y, r ? { residual: device.tensor(r, [M, N]) } : {});
        const got = await y.toFloat32();
        assertClose(got, matmulRef(bf16(x), bf16(w), M, N, K, r), TOLERANCE.f32, 'y vs the product of bf16(x) and bf16(W)');
        expect(roundingRatio(got, x, w, M, N, K, matmulRef(x, w, M, N, K, r))).toBeLessThanOrEqual(2);
      });

  it('split outputs of separate Q4_K and Q6_K tensors (as Q4_K_M stores q/k/v), and the SwiGLU epilogue', async () => {
    const rng = new Rng('amx-quant parts');
    const M = 29, K = 512, cols = [40, 23];
    const parts: QuantDType[] = ['q4_k', 'q6_k'];
    const x = rng.normals(M * K, 1);
    const blocks = cols.map((n, j) => quantize(rng.normals(n * K, 1 / Math.sqrt(K)), parts[j]));
    const outs = cols.map((n) => device.tensor(new Float32Array(M * n).fill(NaN), [M, n]));
    ops.matmul(device.tensor(x, [M, K]), blocks.map((b, j) => device.tensor(b, [cols[j], K], parts[j])), outs);
    for (let j = 0; j < 2; j++)
      assertClose(await outs[j].toFloat32(), matmulRef(bf16(x), bf16(dequantize(blocks[j], parts[j])), M, cols[j], K), TOLERANCE.f32, `part ${j}`);

    const I = 33;
    const stored = [0, 1].map(() => quantize(rng.normals(I * K, 1.5 / Math.sqrt(K)), 'q4_k'));
    const out = device.tensor(new Float32Array(M * I).fill(NaN), [M, I]);
    ops.matmul(device.tensor(x, [M, K]), stored.map((s) => device.tensor(s, [I, K], 'q4_k')), out, { epilogue: 'swiglu' });
    const [gate, up] = stored.map((s) => matmulRef(bf16(x), bf16(dequantize(s, 'q4_k')), M, I, K));
    assertClose(await out.toFloat32(), swigluRef(gate, up), 1e-5, 'silu(gate)·up');
  });

  it('MoE expert matmuls with 17+ rows per expert take the tiles too', async () => {
    const rng = new Rng('amx-quant moe');
    const T = 41, E = 3, k = 2, N = 27, K = 256;
    const ids = Int32Array.from({ length: T * k }, (_, i) => (i % k === 0 ? (i >> 1) % E : ((i >> 1) + 1) % E));
    const x = rng.normals(T * K, 1);
    const blocks = quantize(rng.normals(E * N * K, 1 / Math.sqrt(K)), 'q5_k');
    const y = device.tensor(new Float32Array(T * k * N).fill(NaN), [T, k, N]);
    ops.moeMatmul(device.tensor(x, [T, K]), device.tensor(blocks, [E, N, K], 'q5_k'), device.tensor(ids, [T, k], 'i32'), y);
    const want = moeMatmulRef(bf16(x), false, bf16(dequantize(blocks, 'q5_k')), ids, T, k, E, N, K);
    assertClose(await y.toFloat32(), want, TOLERANCE.f32, 'y vs the product of bf16(x) and bf16(W)');
  });
});
