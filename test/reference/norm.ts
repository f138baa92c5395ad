// float64 references for the normalisations of native/ops.h: rmsnorm (with residual and sum) and
// Qwen3's per-head QK-norm fused with rotate-half RoPE (frequencies from rope.ts).

export interface RmsNormRef {
  out: Float64Array;
  /** x + residual (x alone when there is no residual). */
  sum: Float64Array;
}

/** sum = x + residual; out = sum / sqrt(mean(sum²) + eps) · weight, per row of `dim`. */
export function rmsnormRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dim: number,
  eps: number,
  residual?: ArrayLike<number>,
): RmsNormRef {
  const rows = x.length / dim;
  const sum = Float64Array.from(x, (v, i) => v + (residual ? residual[i] : 0));
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += sum[r * dim + j] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let j = 0; j < dim; j++) out[r * dim + j] = sum[r * dim + j] * inv * weight[j];
  }
  return { out, sum };
}

/** The rotation of qkNormRope: one inverse frequency per pair and YaRN's cos/sin scale (1 for plain RoPE). */
export interface RopeRef {
  invFreq: ArrayLike<number>;
  attentionFactor: number;
}

/**
 * One tensor of qkNormRope: x [T, H, D] normalised per head (when `weight` is given), then rotated:
 * for i < D/2, a = pos · invFreq[i], c = m·cos a, s = m·sin a (m the attention factor):
 * x'[i] = x[i]·c − x[i+D/2]·s, x'[i+D/2] = x[i+D/2]·c + x[i]·s.
 */
export function normRopeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  heads: number,
  headDim: number,
  rope: RopeRef,
  eps: number,
  weight?: ArrayLike<number>,
): Float64Array {
  const out = Float64Array.from(x);
  const half = headDim / 2;
  const m = rope.attentionFactor;
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      if (weight) {
        let ss = 0;
        for (let j = 0; j < headDim; j++) ss += out[base + j] ** 2;
        const inv = 1 / Math.sqrt(ss / headDim + eps);
        for (let j = 0; j < headDim; j++) out[base + j] *= inv * weight[j];
      }
      for (let i = 0; i < half; i++) {
        const a = positions[t] * rope.invFreq[i];
        const c = m * Math.cos(a);
        const s = m * Math.sin(a);
        const lo = out[base + i];
        const hi = out[base + i + half];
        out[base + i] = lo * c - hi * s;
        out[base + i + half] = hi * c + lo * s;
      }
    }
  }
  return out;
}
