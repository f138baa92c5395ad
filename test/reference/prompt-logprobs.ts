// Prompt logprobs from the float64 reference forward pass (test/model/reference.ts), and the check
// that a runtime's entries match them: logprob to `tol`, rank and top-N allowing for f32 near-ties.
import { expect } from 'vitest';
import type { PromptLogprobsList } from '../../src/engine/types.js';
import type { ReferenceQwen3 } from '../model/reference.js';
import { logSoftmax } from './sampling.js';

export interface RefPromptLogprob {
  logprob: number;
  /** The row's log_softmax: every token's reference logprob at this position. */
  row: Float64Array;
}

/** Entry p (p ≥ 1): token p's logprob under the reference's row p − 1; entry 0 is null. */
export function referencePromptLogprobs(ref: ReferenceQwen3, tokens: readonly number[]): (RefPromptLogprob | null)[] {
  const logits = ref.logits(tokens);
  return tokens.map((t, p) => {
    if (p === 0) return null;
    const row = Float64Array.from(logSoftmax(logits[p - 1]));
    return { logprob: row[t], row };
  });
}

/** The reference rank of a logprob: 1 + tokens strictly above it, a range when others lie within tol. */
function rankRange(row: Float64Array, value: number, tol: number): [number, number] {
  let surely = 0;
  let maybe = 0;
  for (const v of row) {
    if (v > value + tol) surely++;
    if (v > value - tol) maybe++;
  }
  return [surely + 1, Math.max(surely + 1, maybe)];
}

/** The k-th largest value (−∞ for k = 0), in one pass keeping the k largest. */
function kthLargest(row: Float64Array, k: number): number {
  if (k === 0) return -Infinity;
  const top: number[] = [];
  for (const v of row) {
    if (top.length === k && v <= top[k - 1]) continue;
    let at = top.length === k ? k - 1 : top.length;
    while (at > 0 && top[at - 1] < v) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = v;
  }
  return top[k - 1];
}

/** Asserts `got` (the runtime's entries for `tokens`) matches the reference with `numTop` alternatives. */
export function expectPromptLogprobs(
  got: PromptLogprobsList | undefined,
  want: readonly (RefPromptLogprob | null)[],
  tokens: readonly number[],
  numTop: number,
  tol: number,
  what: string,
): void {
  expect(got, `${what}: prompt logprobs`).toBeDefined();
  expect(got!.length, `${what}: one entry per prompt token`).toBe(tokens.length);
  expect(got![0], `${what}: the first token has none`).toBeNull();
  for (let p = 1; p < tokens.length; p++) {
    const e = got![p];
    const w = want[p]!;
    const at = `${what}: token ${p}`;
    expect(e, at).not.toBeNull();
    expect(e!.tokenId, at).toBe(tokens[p]);
    expect(Math.abs(e!.logprob - w.logprob), `${at} logprob ${e!.logprob} vs ${w.logprob}`).toBeLessThan(tol);
    const [lo, hi] = rankRange(w.row, w.logprob, tol);
    expect(e!.rank! >= lo && e!.rank! <= hi, `${at} rank ${e!.rank} vs reference ${lo}…${hi}`).toBe(true);
    expect(e!.top.length, at).toBe(numTop);
    // The alternatives: their reference logprobs, descending, and none missing above the last one.
    const nth = kthLargest(w.row, numTop);
    e!.top.forEach((t, j) => {
      expect(Math.abs(t.logprob - w.row[t.tokenId]), `${at} top ${j}`).toBeLessThan(tol);
      expect(w.row[t.tokenId], `${at} top ${j} is among the ${numTop} largest`).toBeGreaterThan(nth - tol);
      if (j > 0) expect(t.logprob, `${at} top ${j} descending`).toBeLessThanOrEqual(e!.top[j - 1].logprob);
    });
    if (numTop > 0) expect(e!.top[0].logprob, `${at}: the target cannot beat the best`).toBeGreaterThanOrEqual(e!.logprob);
  }
}
