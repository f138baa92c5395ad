// float64 references for the normalisations of native/ops.h: rmsnorm (with residual and sum) and
// Qwen3's per-head QK-norm fused with rotate-half RoPE.

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

/**
 * One tensor of qkNormRope: x [T, H, D] normalised per head (when `weight` is given), then rotated:
 * for i < D/2, a = pos · theta^(−2i/D): x'[i] = x[i]cos a − x[i+D/2] sin a, x'[i+D/2] = x[i+D/2] cos a + x[i] sin a.
 */
export function normRopeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  heads: number,
  headDim: number,
  theta: number,
  eps: number,
  weight?: ArrayLike<number>,
): Float64Array {
  const out = Float64Array.from(x);
  const half = headDim / 2;
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
        const a = positions[t] * theta ** ((-2 * i) / headDim);
        const lo = out[base + i];
        const hi = out[base + i + half];
        out[base + i] = lo * Math.cos(a) - hi * Math.sin(a);
        out[base + i + half] = hi * Math.cos(a) + lo * Math.sin(a);
      }
    }
  }
  return out;
}
