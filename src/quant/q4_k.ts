// Q4_K (ggml block_q4_K): 256 values in 144 bytes — f16 d and dmin (bytes 0–3), 12 bytes of 6-bit
// sub-block scales and mins (4–15), then 128 bytes of 4-bit quants (16–143). Sub-block j (32 values)
// is x = d·scale_j·q − dmin·min_j. Quant bytes come in 4 groups of 32: group g holds sub-block 2g in
// the low nibbles and sub-block 2g+1 in the high nibbles.
import { fr, nearestInt, readHalf, writeHalf, halfRound, type Rounding } from './f32-math.js';
import { makeQkx2Quants, packScalesMinsK4, scaleMinK4, subBlockWeights } from './k-scales.js';

const L = new Uint8Array(256);
const laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(8);
const mins = new Float32Array(8);

/** quantize_row_q4_K_ref for one block: x[xo .. xo+256) → out[oo .. oo+144). */
export function quantizeBlockQ4_K(x: Float32Array, xo: number, out: Uint8Array, oo: number): void {
  for (let j = 0; j < 8; j++) {
    subBlockWeights(x, xo + 32 * j, weights);
    [scales[j], mins[j]] = makeQkx2Quants(32, 15, x, xo + 32 * j, weights, L, 32 * j, laux, -1, fr(0.1), 20);
  }
  const [d, dmin] = packScalesMinsK4(scales, mins, out, oo + 4);
  writeHalf(out, oo, d);
  writeHalf(out, oo + 2, dmin);
  const dh = halfRound(d);
  const dminh = halfRound(dmin);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, oo + 4);
    const dj = fr(dh * sc);
    if (!dj) continue;
    const dmj = fr(dminh * m);
    for (let i = 0; i < 32; i++) {
      const l = nearestInt(fr(fr(x[xo + 32 * j + i] + dmj) / dj));
      L[32 * j + i] = Math.max(0, Math.min(15, l));
    }
  }
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) out[oo + 16 + 32 * g + l] = L[64 * g + l] | (L[64 * g + l + 32] << 4);
  }
}

export function dequantizeBlockQ4_K(src: Uint8Array, so: number, y: Float64Array, yo: number, r: Rounding): void {
  const d = readHalf(src, so);
  const dmin = readHalf(src, so + 2);
  for (let g = 0; g < 4; g++) {
    const [sc1, m1] = scaleMinK4(2 * g, src, so + 4);
    const [sc2, m2] = scaleMinK4(2 * g + 1, src, so + 4);
    const d1 = r(d * sc1);
    const min1 = r(dmin * m1);
    const d2 = r(d * sc2);
    const min2 = r(dmin * m2);
    for (let l = 0; l < 32; l++) {
      const q = src[so + 16 + 32 * g + l];
      y[yo + 64 * g + l] = r(r(d1 * (q & 0xf)) - min1);
      y[yo + 64 * g + 32 + l] = r(r(d2 * (q >> 4)) - min2);
    }
  }
}
