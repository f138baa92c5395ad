// float64 references for RoPE frequencies: plain theta^(−2i/D) and YaRN, written step by step after
// transformers' `_compute_default_rope_parameters` / `_compute_yarn_parameters` (independently of
// src/runtime/rope.ts, which the op tests check against this).
import type { RopeRef } from './norm.js';

export function plainRopeRef(headDim: number, theta: number): RopeRef {
  const invFreq: number[] = [];
  for (let d = 0; d < headDim; d += 2) invFreq.push(1 / theta ** (d / headDim));
  return { invFreq, attentionFactor: 1 };
}

export interface YarnRefParams {
  factor: number;
  originalMaxPositionEmbeddings: number;
  betaFast?: number;
  betaSlow?: number;
  truncate?: boolean;
  attentionFactor?: number;
}

export function yarnRopeRef(headDim: number, theta: number, p: YarnRefParams): RopeRef {
  const dim = headDim;
  const getMscale = (scale: number) => (scale <= 1 ? 1 : 0.1 * Math.log(scale) + 1);
  const attentionFactor = p.attentionFactor ?? getMscale(p.factor);
  const findCorrectionDim = (numRotations: number) =>
    (dim * Math.log(p.originalMaxPositionEmbeddings / (numRotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = findCorrectionDim(p.betaFast ?? 32);
  let high = findCorrectionDim(p.betaSlow ?? 1);
  if (p.truncate ?? true) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  const rampMax = low === high ? high + 0.001 : high;
  const invFreq: number[] = [];
  for (let j = 0; j < dim / 2; j++) {
    const posFreq = theta ** ((2 * j) / dim);
    const extrapolation = 1 / posFreq;
    const interpolation = 1 / (p.factor * posFreq);
    const ramp = Math.min(1, Math.max(0, (j - low) / (rampMax - low)));
    const extrapolationFactor = 1 - ramp;
    invFreq.push(interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor);
  }
  return { invFreq, attentionFactor };
}
