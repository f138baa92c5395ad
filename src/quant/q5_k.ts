// Q5_K (ggml block_q5_K): 256 values in 176 bytes — f16 d and dmin (bytes 0–3), 12 bytes of 6-bit
// sub-block scales and mins (4–15), 32 bytes of high bits qh (16–47), 128 bytes of low nibbles qs
// (48–175). Low nibbles are laid out as in Q4_K; value l of sub-block j has its 5th bit in bit j of
// qh[l]. Sub-block j is x = d·scale_j·q − dmin·min_j with q in 0..31.
import { fr, nearestInt, readHalf, writeHalf, halfRound, type Rounding } from './f32-math.js';
import { makeQkx2Quants, packScalesMinsK4, scaleMinK4, subBlockWeights } from './k-scales.js';

const L = new Uint8Array(256);
const laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(8);
const mins = new Float32Array(8);

/** quantize_row_q5_K_ref for one block: x[xo .. xo+256) → out[oo .. oo+176). */
export function quantizeBlockQ5_K(x: Float32Array, xo: number, out: Uint8Array, oo: number): void {
  for (let j = 0; j < 8; j++) {
    subBlockWeights(x, xo + 32 * j, weights);
    [scales[j], mins[j]] = makeQkx2Quants(32, 31, x, xo + 32 * j, weights, L, 32 * j, laux, -0.5, fr(0.1), 15);
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
      L[32 * j + i] = Math.max(0, Math.min(31, l));
    }
  }
  out.fill(0, oo + 16, oo + 48);
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) {
      let l1 = L[64 * g + l];
      let l2 = L[64 * g + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        out[oo + 16 + l] |= 1 << (2 * g);
      }
      if (l2 > 15) {
        l2 -= 16;
        out[oo + 16 + l] |= 2 << (2 * g);
      }
      out[oo + 48 + 32 * g + l] = l1 | (l2 << 4);
    }
  }
}

export function dequantizeBlockQ5_K(src: Uint8Array, so: number, y: Float64Array, yo: number, r: Rounding): void {
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
      const q = src[so + 48 + 32 * g + l];
      const h = src[so + 16 + l] >> (2 * g);
      y[yo + 64 * g + l] = r(r(d1 * ((q & 0xf) + (h & 1 ? 16 : 0))) - min1);
      y[yo + 64 * g + 32 + l] = r(r(d2 * ((q >> 4) + (h & 2 ? 16 : 0))) - min2);
    }
  }
}
