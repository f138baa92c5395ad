// Q8_0 (ggml block_q8_0): 32 values in 34 bytes — an f16 scale d, then 32 int8 quants; x = d · q.
import { fr, readHalf, roundf, writeHalf, type Rounding } from './f32-math.js';

/** quantize_row_q8_0_ref for one block: x[xo .. xo+32) → out[oo .. oo+34). */
export function quantizeBlockQ8_0(x: Float32Array, xo: number, out: Uint8Array, oo: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
  const d = fr(amax / 127);
  const id = d ? fr(1 / d) : 0;
  writeHalf(out, oo, d);
  for (let j = 0; j < 32; j++) out[oo + 2 + j] = roundf(fr(x[xo + j] * id)) & 0xff;
}

export function dequantizeBlockQ8_0(src: Uint8Array, so: number, y: Float64Array, yo: number, r: Rounding): void {
  const d = readHalf(src, so);
  for (let j = 0; j < 32; j++) y[yo + j] = r(((src[so + 2 + j] << 24) >> 24) * d);
}
