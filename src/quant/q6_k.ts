// Q6_K (ggml block_q6_K): 256 values in 210 bytes — 128 bytes of low nibbles ql (0–127), 64 bytes of
// high 2-bit pairs qh (128–191), 16 int8 sub-block scales (192–207), f16 d (208–209). Sub-block s
// (16 values) is x = d·scale_s·(q − 32), q in 0..63. Each half of 128 values uses 64 ql bytes and 32 qh
// bytes: value l (0..31) of its four quarters takes ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high
// nibbles and bits 0–1, 2–3, 4–5, 6–7 of qh[l].
import { fr, nearestInt, readHalf, writeHalf, halfRound, type Rounding } from './f32-math.js';

const GROUP_MAX_EPS = fr(1e-15);
const L = new Int8Array(256);
const scales = new Float32Array(16);

/** ggml's make_qx_quants with rmse_type 1 and no weights: signed levels −nmax..nmax−1 stored + nmax. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      if (store) L[lo + i] = l + nmax;
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(fr(-nmax / max), true);
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      fit(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** quantize_row_q6_K_ref for one block: x[xo .. xo+256) → out[oo .. oo+210). */
export function quantizeBlockQ6_K(x: Float32Array, xo: number, out: Uint8Array, oo: number): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(16, 32, x, xo + 16 * ib, 16 * ib);
    scales[ib] = scale;
    if (Math.abs(scale) > maxAbsScale) {
      maxAbsScale = Math.abs(scale);
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    out.fill(0, oo, oo + 210);
    return;
  }
  const iscale = fr(-128 / maxScale);
  writeHalf(out, oo + 208, fr(1 / iscale));
  const dh = halfRound(fr(1 / iscale));
  for (let ib = 0; ib < 16; ib++) out[oo + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
  for (let j = 0; j < 16; j++) {
    const d = fr(dh * ((out[oo + 192 + j] << 24) >> 24));
    if (!d) continue;
    for (let i = 0; i < 16; i++) {
      const l = Math.max(-32, Math.min(31, nearestInt(fr(x[xo + 16 * j + i] / d))));
      L[16 * j + i] = l + 32;
    }
  }
  for (let h = 0; h < 2; h++) {
    const j = 128 * h;
    const ql = oo + 64 * h;
    const qh = oo + 128 + 32 * h;
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l];
      const q2 = L[j + l + 32];
      const q3 = L[j + l + 64];
      const q4 = L[j + l + 96];
      out[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      out[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      out[qh + l] = ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)) & 0xff;
    }
  }
}

export function dequantizeBlockQ6_K(src: Uint8Array, so: number, y: Float64Array, yo: number, r: Rounding): void {
  const d = readHalf(src, so + 208);
  for (let h = 0; h < 2; h++) {
    const ql = so + 64 * h;
    const qh = so + 128 + 32 * h;
    const sc = so + 192 + 8 * h;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const hb = src[qh + l];
      const q1 = ((src[ql + l] & 0xf) | ((hb & 3) << 4)) - 32;
      const q2 = ((src[ql + l + 32] & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
      const q3 = ((src[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      const q4 = ((src[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
      const s = (k: number) => (src[sc + is + k] << 24) >> 24;
      y[yo + 128 * h + l] = r(r(d * s(0)) * q1);
      y[yo + 128 * h + l + 32] = r(r(d * s(2)) * q2);
      y[yo + 128 * h + l + 64] = r(r(d * s(4)) * q3);
      y[yo + 128 * h + l + 96] = r(r(d * s(6)) * q4);
    }
  }
}
