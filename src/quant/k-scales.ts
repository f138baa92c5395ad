// The 6-bit scales and mins of Q4_K and Q5_K: 8 sub-blocks of 32 values, each with a scale and a min,
// packed into 12 bytes (ggml's get_scale_min_k4 layout). Bytes 0–3 hold scales 0–3 (low 6 bits),
// bytes 4–7 mins 0–3; sub-blocks 4–7 keep their low 4 bits in bytes 8–11 (scale low, min high nibble)
// and their top 2 bits in the spare top bits of bytes 0–3 (scales) and 4–7 (mins).
import { fr, nearestInt } from './f32-math.js';

/** Scale and min of sub-block j (0..7) from the 12 bytes at `so`. */
export function scaleMinK4(j: number, src: Uint8Array, so: number): [number, number] {
  if (j < 4) return [src[so + j] & 63, src[so + j + 4] & 63];
  return [
    (src[so + j + 4] & 0xf) | ((src[so + j - 4] >> 6) << 4),
    (src[so + j + 4] >> 4) | ((src[so + j] >> 6) << 4),
  ];
}

/** Quantizes 8 sub-block scales and mins to 6 bits against their maxima; writes the 12 bytes at `oo`
 *  and returns [d, dmin] (f32, before rounding to the block's f16 fields). */
export function packScalesMinsK4(scales: Float32Array, mins: Float32Array, out: Uint8Array, oo: number): [number, number] {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      out[oo + j] = ls;
      out[oo + j + 4] = lm;
    } else {
      out[oo + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[oo + j - 4] |= (ls >> 4) << 6;
      out[oo + j] |= (lm >> 4) << 6;
    }
  }
  return [fr(maxScale / 63), fr(maxMin / 63)];
}

/**
 * ggml's make_qkx2_quants: levels 0..nmax for n values with an affine fit x ≈ scale·L − min, searching
 * nstep+1 inverse scales around nmax/(max − min) for the least weighted squared error. Writes the levels
 * to L[lo .. lo+n) and returns [scale, min] (min ≥ 0, subtracted).
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [number, number] {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[xo + i] - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    const diff = fr(fr(fr(scale * L[lo + i]) + min) - x[xo + i]);
    bestError = fr(bestError + fr(weights[i] * fr(diff * diff)));
  }
  // As in ggml, each step uses the current best min (it moves when a step wins), not the data's min.
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      laux[i] = l;
      const w = weights[i];
      const wl = fr(w * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * laux[i]) + thisMin) - x[xo + i]);
        curError = fr(curError + fr(weights[i] * fr(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** The per-sub-block weights of the Q4_K/Q5_K reference quantizers: rms of the 32 values + |x|. */
export function subBlockWeights(x: Float32Array, xo: number, weights: Float32Array): void {
  let sumX2 = 0;
  for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + l] * x[xo + l]));
  const avX = fr(Math.sqrt(fr(sumX2 / 32)));
  for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xo + l]));
}
