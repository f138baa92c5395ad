// Table rows for the mixture-of-experts ops: moeRoute (ties, k = 1..4, E not a power of two, with
// and without renormalisation), moeMatmul (bf16/f16/f32 and Q8_0/Q4_K/Q5_K/Q6_K experts, the latter
// against the float64 product of their dequantized blocks; x per token or per slot, tokens
// sharing and not sharing experts, more slots on one expert than a CUDA CTA lists at once, ids out of
// range) and moeCombine (no residual, a separate one, in place).
import { ops, type Device, type QuantDType } from '../../../src/runtime/index.js';
import { dequantize, quantize } from '../../../src/quant/index.js';
import { TOLERANCE } from '../../reference/compare.js';
import { moeCombineRef, moeMatmulRef, moeRouteRef } from '../../reference/moe.js';
import { poisoned } from '../../reference/poison.js';
import { Rng } from '../../reference/random.js';
import { storedAs, type WeightType } from '../../reference/rounding.js';
import { caseName, once, type OpCase } from './op_case.js';

/** ids poisoned with -7 (no expert), so a slot the op leaves unwritten shows. */
function poisonedIds(device: Device, T: number, k: number) {
  return device.tensor(new Int32Array(T * k).fill(-7), [T, k], 'i32');
}

function routeCase(T: number, E: number, k: number, renormalize: boolean, ties: boolean): OpCase {
  const name = caseName('moeRoute', { T, E, k, renorm: renormalize, ties });
  const inputs = once(() => {
    const rng = new Rng(name);
    const logits = rng.normals(T * E, 2);
    // Ties: every row repeats some logits (the top one included) at other experts.
    if (ties)
      for (let t = 0; t < T; t++) {
        let top = 0;
        for (let e = 1; e < E; e++) if (logits[t * E + e] > logits[t * E + top]) top = e;
        for (let r = 0; r < 3; r++) logits[t * E + rng.int(0, E)] = logits[t * E + (r === 0 ? top : rng.int(0, E))];
      }
    return logits;
  });
  return {
    name,
    exactOutputs: ['ids'],
    async run(device: Device) {
      const ids = poisonedIds(device, T, k);
      const weights = poisoned(device, [T, k]);
      ops.moeRoute(device.tensor(inputs(), [T, E]), ids, weights.tensor, { renormalize });
      await weights.checkGuards('weights');
      return { ids: Float32Array.from(await ids.read()), weights: await weights.tensor.read() };
    },
    expected: once(() => {
      const r = moeRouteRef(inputs(), T, E, k, renormalize);
      return { ids: Float64Array.from(r.ids), weights: r.weights };
    }),
    tolerance: () => TOLERANCE.f32,
  };
}

type Sharing = 'shared' | 'distinct' | 'one-expert' | 'out-of-range';

function matmulCase(w: WeightType | QuantDType, T: number, E: number, k: number, N: number, K: number, xPerSlot: boolean, sharing: Sharing): OpCase {
  const name = caseName('moeMatmul', { w, T, E, k, N, K, x: xPerSlot ? 'per-slot' : 'per-token', ids: sharing });
  const inputs = once(() => {
    const rng = new Rng(name);
    const ids = new Int32Array(T * k);
    for (let t = 0; t < T; t++) {
      // shared: every token draws from the first few experts; distinct: a token's k experts differ
      // and tokens spread over all E; one-expert: every slot on expert E − 1.
      const perm = rng.permutation(sharing === 'shared' ? Math.min(E, k + 1) : E);
      for (let j = 0; j < k; j++) ids[t * k + j] = sharing === 'one-expert' ? E - 1 : perm[j % perm.length];
    }
    if (sharing === 'out-of-range') {
      ids[0] = -1;
      ids[ids.length - 1] = E;
    }
    return {
      ids,
      x: rng.normals((xPerSlot ? T * k : T) * K),
      w: rng.normals(E * N * K, 1 / Math.sqrt(K)),
    };
  });
  const quantized = w === 'q8_0' || w === 'q4_k' || w === 'q5_k' || w === 'q6_k';
  // The experts as the device holds them, and the values the reference multiplies by.
  const weights = once(() => {
    const { w: wv } = inputs();
    if (!quantized) return { stored: wv, values: storedAs(wv, w) };
    const blocks = quantize(wv, w);
    return { stored: blocks, values: dequantize(blocks, w) };
  });
  return {
    name,
    heavyForSim: T * k * N * K > 4_000_000,
    async run(device: Device) {
      const { ids, x } = inputs();
      const y = poisoned(device, [T, k, N]);
      ops.moeMatmul(
        device.tensor(x, xPerSlot ? [T, k, K] : [T, K]),
        device.tensor(weights().stored, [E, N, K], w),
        device.tensor(ids, [T, k], 'i32'),
        y.tensor,
      );
      await y.checkGuards('y');
      return { y: await y.tensor.read() };
    },
    expected: once(() => {
      const { ids, x } = inputs();
      return { y: moeMatmulRef(x, xPerSlot, weights().values, ids, T, k, E, N, K) };
    }),
    tolerance: () => TOLERANCE.f32,
  };
}

function combineCase(T: number, k: number, N: number, residual: 'none' | 'separate' | 'in-place'): OpCase {
  const name = caseName('moeCombine', { T, k, N, residual });
  const inputs = once(() => {
    const rng = new Rng(name);
    return { y: rng.normals(T * k * N), weights: rng.uniforms(T * k, 0.05, 1), residual: rng.normals(T * N) };
  });
  return {
    name,
    async run(device: Device) {
      const { y, weights, residual: r } = inputs();
      const yt = device.tensor(y, [T, k, N]);
      const wt = device.tensor(weights, [T, k]);
      if (residual === 'in-place') {
        const out = device.tensor(r, [T, N]);
        ops.moeCombine(yt, wt, out, { residual: out });
        return { out: await out.read() };
      }
      const out = poisoned(device, [T, N]);
      ops.moeCombine(yt, wt, out.tensor, residual === 'separate' ? { residual: device.tensor(r, [T, N]) } : {});
      await out.checkGuards('out');
      return { out: await out.tensor.read() };
    },
    expected: once(() => {
      const { y, weights, residual: r } = inputs();
      return { out: moeCombineRef(y, weights, T, k, N, residual === 'none' ? undefined : r) };
    }),
    tolerance: () => TOLERANCE.f32,
  };
}

export function moeCases(): OpCase[] {
  return [
    routeCase(1, 7, 1, false, false),
    routeCase(13, 12, 2, true, true),
    routeCase(37, 60, 4, true, false),
    routeCase(5, 3, 3, false, true),
    routeCase(29, 128, 8, true, true),
    matmulCase('bf16', 1, 5, 2, 37, 67, false, 'distinct'),
    matmulCase('bf16', 17, 7, 3, 45, 96, false, 'shared'),
    matmulCase('f16', 23, 12, 4, 29, 50, false, 'distinct'),
    matmulCase('f32', 9, 6, 1, 33, 71, false, 'out-of-range'),
    matmulCase('bf16', 11, 5, 4, 41, 29, true, 'shared'),
    matmulCase('f32', 38, 3, 2, 19, 43, true, 'distinct'),
    matmulCase('f16', 67, 4, 4, 21, 33, true, 'one-expert'),
    matmulCase('q8_0', 7, 5, 2, 37, 96, false, 'distinct'),
    matmulCase('q4_k', 13, 6, 3, 19, 256, false, 'shared'),
    matmulCase('q5_k', 3, 7, 2, 23, 512, true, 'distinct'),
    matmulCase('q6_k', 9, 5, 2, 17, 256, false, 'out-of-range'),
    matmulCase('q4_k', 41, 3, 2, 11, 256, false, 'one-expert'),
    combineCase(1, 1, 37, 'none'),
    combineCase(19, 3, 45, 'separate'),
    combineCase(40, 4, 129, 'in-place'),
  ];
}
