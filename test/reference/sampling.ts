// float64 references for sampling (native/ops.h SamplingParams): log_softmax, logit bias, the token
// mask, penalties, the kept set of the filters (bias → mask → penalties → /temperature → top-k →
// top-p → min-p, each keeping every token whose value reaches its threshold, ties kept), the filtered
// distribution and the Gumbel-max draw with Philox noise. Masked tokens are never kept or drawn.
import type { SamplingRow } from '../../src/runtime/index.js';
import { gumbel } from './philox.js';

export type SamplingRowRef = SamplingRow;

/** Whether the row's mask (if any) allows token t: bit (t & 31) of word (t >> 5). */
export function allowedRef(row: SamplingRowRef, t: number): boolean {
  const m = row.allowedMask;
  return !m || Math.floor(((m[Math.floor(t / 32)] >>> 0) / 2 ** (t % 32)) % 2) === 1;
}

export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (l) => l - lse);
}

/** Index of the largest value, lowest index on ties. */
export function argmax(values: ArrayLike<number>, mask?: ArrayLike<boolean>): number {
  let best = -1;
  for (let i = 0; i < values.length; i++)
    if ((!mask || mask[i]) && (best < 0 || values[i] > values[best])) best = i;
  return best;
}

/**
 * Logit bias, then the mask (−∞), then penalties, in vLLM's order: repetition (every listed token, prompt or output: l > 0 ? l / r : l · r),
 * then frequency (× output count) and presence (once when the output count is > 0) subtracted.
 */
export function penalize(logits: ArrayLike<number>, row: SamplingRowRef): Float64Array {
  const out = Float64Array.from(logits);
  const biasTokens = row.biasTokens ?? [];
  for (let i = 0; i < biasTokens.length; i++) out[biasTokens[i]] += row.biasValues![i];
  for (let t = 0; t < out.length; t++) if (!allowedRef(row, t)) out[t] = -Infinity;
  const tokens = row.penaltyTokens ?? [];
  const counts = row.penaltyCounts ?? [];
  const r = row.repetitionPenalty ?? 1;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (r !== 1) out[t] = out[t] > 0 ? out[t] / r : out[t] * r;
    out[t] -= (row.frequencyPenalty ?? 0) * counts[i];
    if (counts[i] > 0) out[t] -= row.presencePenalty ?? 0;
  }
  return out;
}

/** Values after penalties and temperature (the draw's logits); temperature 0 leaves them unscaled. */
export function scaledValues(logits: ArrayLike<number>, row: SamplingRowRef): Float64Array {
  const v = penalize(logits, row);
  if (row.temperature > 0) for (let i = 0; i < v.length; i++) v[i] /= row.temperature;
  return v;
}

function softmaxOver(values: Float64Array, mask: boolean[]): Float64Array {
  let max = -Infinity;
  values.forEach((v, i) => mask[i] && (max = Math.max(max, v)));
  const p = new Float64Array(values.length);
  let sum = 0;
  values.forEach((v, i) => mask[i] && (sum += p[i] = Math.exp(v - max)));
  return p.map((x) => x / sum);
}

/** Which tokens survive top-k, then top-p (on the softmax of the top-k survivors), then min-p. */
export function keptMask(values: Float64Array, row: SamplingRowRef): boolean[] {
  const V = values.length;
  let mask = Array.from({ length: V }, (_, t) => allowedRef(row, t));
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
  const topK = row.topK ?? 0;
  if (topK > 0 && topK < V) {
    const threshold = values[order[topK - 1]];
    mask = mask.map((m, i) => m && values[i] >= threshold);
  }
  const topP = row.topP ?? 1;
  if (topP < 1) {
    const p = softmaxOver(values, mask);
    let cum = 0;
    let threshold = -Infinity;
    for (const i of order) {
      if (!mask[i]) continue;
      cum += p[i];
      threshold = values[i];
      if (cum >= topP) break;
    }
    mask = mask.map((m, i) => m && values[i] >= threshold);
  }
  const minP = row.minP ?? 0;
  if (minP > 0) {
    let max = -Infinity;
    values.forEach((v, i) => mask[i] && (max = Math.max(max, v)));
    const threshold = max + Math.log(minP); // p_i ≥ minP · p_max
    mask = mask.map((m, i) => m && values[i] >= threshold);
  }
  return mask;
}

/** The distribution a seeded draw follows: softmax of the scaled values over the kept set. */
export function filteredProbs(logits: ArrayLike<number>, row: SamplingRowRef): Float64Array {
  const values = scaledValues(logits, row);
  return softmaxOver(values, keptMask(values, row));
}

export interface DrawRef {
  token: number;
  /** Score gap between the winner and the runner-up (a tiny gap means f32 may pick the other). */
  margin: number;
  runnerUp: number;
}

/** The token a backend must pick: greedy argmax, or Gumbel-max over the kept set with Philox noise. */
export function drawRef(logits: ArrayLike<number>, row: SamplingRowRef): DrawRef {
  const values = scaledValues(logits, row);
  if (row.temperature === 0) {
    const token = argmax(values, Array.from({ length: values.length }, (_, t) => allowedRef(row, t)));
    return { token, margin: Infinity, runnerUp: -1 };
  }
  const mask = keptMask(values, row);
  let best = -1;
  let second = -1;
  const score = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    if (!mask[i]) continue;
    score[i] = values[i] + gumbel(row.seed ?? 0, row.offset ?? 0, i);
    if (best < 0 || score[i] > score[best]) {
      second = best;
      best = i;
    } else if (second < 0 || score[i] > score[second]) {
      second = i;
    }
  }
  return { token: best, margin: second < 0 ? Infinity : score[best] - score[second], runnerUp: second };
}
