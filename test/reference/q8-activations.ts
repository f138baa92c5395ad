// ggml's activation quantization for its integer dot products, as the CPU's fast precision does it
// (native/cpu/quant_int8.cc): q8_0 (blocks of 32, scale amax/127 stored as f16, the x86 SIMD form) for
// Q8_0 weights, q8_K (blocks of 256, scale max/−127 in f32) for the K formats. Returns the values the
// integer kernels multiply by, d·q, as float64.
import { f16Bits, f16Value, type QuantDType } from '../../src/runtime/dtype.js';

const f = Math.fround;

/** Round half to even (nearbyint in the default rounding mode). */
function rne(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function q8Activations(x: Float32Array, w: QuantDType): Float64Array {
  const block = w === 'q8_0' ? 32 : 256;
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += block) {
    let amax = 0, max = 0;
    for (let j = b; j < b + block; j++) {
      const a = Math.abs(x[j]);
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    if (amax === 0) continue;
    if (w === 'q8_0') {
      const id = f(127 / amax);
      const d = f16Value(f16Bits(f(amax / 127)));
      for (let j = b; j < b + block; j++) out[j] = rne(f(x[j] * id)) * d;
    } else {
      const iscale = f(-127 / max);
      const d = f(1 / iscale);
      for (let j = b; j < b + block; j++) out[j] = Math.min(127, rne(f(iscale * x[j]))) * d;
    }
  }
  return out;
}
