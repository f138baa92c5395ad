// Rotary position embedding frequencies: plain RoPE and YaRN (transformers' `_compute_yarn_parameters`
// semantics), computed once in double and handed to ops.qkNormRope, so every backend rotates with the
// same numbers and no kernel knows which scaling produced them.

/** YaRN rope scaling (config.json `rope_scaling` with rope_type "yarn"), in Paralon's names. */
export interface YarnScaling {
  type: 'yarn';
  /** Context extension factor (Qwen3's model card: 4). */
  factor: number;
  /** The context the model was trained on (Qwen3: 32,768). */
  originalMaxPositionEmbeddings: number;
  /** Rotations above which a dimension is extrapolated (default 32). */
  betaFast?: number;
  /** Rotations below which a dimension is interpolated (default 1). */
  betaSlow?: number;
  /** Overrides the cos/sin scale (default 0.1·ln(factor) + 1, or the mscale ratio below). */
  attentionFactor?: number;
  /** DeepSeek-style: attention factor = get_mscale(factor, mscale) / get_mscale(factor, mscaleAllDim). */
  mscale?: number;
  mscaleAllDim?: number;
  /** Round the correction range outward to whole dimensions (default true). */
  truncate?: boolean;
}

export type RopeScaling = YarnScaling;

export interface Rope {
  theta: number;
  scaling?: RopeScaling;
}

/** What qkNormRope consumes: one inverse frequency per rotation pair, and the cos/sin scale. */
export interface RopeFrequencies {
  /** [headDim / 2] */
  invFreq: Float64Array;
  attentionFactor: number;
}

/** Inverse frequencies and attention factor for heads of `headDim` (even). */
export function ropeFrequencies(headDim: number, rope: Rope): RopeFrequencies {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0)
    throw new Error(`rope: head dimension must be a positive even integer (got ${headDim})`);
  if (!(rope.theta > 0)) throw new Error(`rope: theta must be positive (got ${rope.theta})`);
  const half = headDim / 2;
  // theta^(-2i/D): the plain frequencies, YaRN's "extrapolation" ones.
  const plain = Float64Array.from({ length: half }, (_, i) => rope.theta ** ((-2 * i) / headDim));
  const s = rope.scaling;
  if (!s) return { invFreq: plain, attentionFactor: 1 };
  return yarn(headDim, rope.theta, plain, s);
}

function yarn(dim: number, base: number, extrapolation: Float64Array, s: YarnScaling): RopeFrequencies {
  if (!(s.factor >= 1)) throw new Error(`rope_scaling: factor must be ≥ 1 (got ${s.factor})`);
  if (!(s.originalMaxPositionEmbeddings >= 1))
    throw new Error(`rope_scaling: original_max_position_embeddings must be ≥ 1 (got ${s.originalMaxPositionEmbeddings})`);
  const betaFast = s.betaFast ?? 32;
  const betaSlow = s.betaSlow ?? 1;
  const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const attentionFactor =
    s.attentionFactor ??
    (s.mscale && s.mscaleAllDim ? getMscale(s.factor, s.mscale) / getMscale(s.factor, s.mscaleAllDim) : getMscale(s.factor));

  // The dimension whose wavelength makes `rotations` turns over the original context.
  const correctionDim = (rotations: number) =>
    (dim * Math.log(s.originalMaxPositionEmbeddings / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(betaFast);
  let high = correctionDim(betaSlow);
  if (s.truncate ?? true) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001; // avoids a division by zero in the ramp

  const half = dim / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    // 1 below `low` (fast dimensions keep their frequency), 0 above `high` (slow ones are divided by factor).
    const extrapolate = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
    invFreq[i] = (extrapolation[i] / s.factor) * (1 - extrapolate) + extrapolation[i] * extrapolate;
  }
  return { invFreq, attentionFactor };
}
