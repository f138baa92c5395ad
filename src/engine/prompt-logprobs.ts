// Prompt logprobs (scoring a prompt, as evaluation harnesses do): the logprob of every prompt token
// given the tokens before it, its rank and the top-N alternatives. Row p of a prefill scores token
// p + 1, so a request asking for them must compute its prompt from row 0 (no prefix-cache reuse).
// Each step that runs such rows keeps its hidden states; the scored rows are projected through the LM
// head ROW_LOGITS_CHUNK at a time and reduced on the device by the sample op's targets (logprob, rank)
// and top-N, so only a [chunk, vocab] buffer ever exists, whatever the prompt's length.
import { ops, type Tensor } from '../runtime/index.js';
import type { ScheduledSequence, SchedulableRequest } from './scheduler.js';
import type { TokenLogprob } from './types.js';

/** Top alternatives per prompt token at most (as for sampled tokens' top_logprobs). */
export const MAX_PROMPT_LOGPROBS = 20;

/** What prompt scoring needs of the model: logits of rows of the last step, a chunk at a time. */
export interface RowLogitsModel {
  /** Rows per rowLogits call at most. */
  readonly maxRowLogits: number;
  /** Logits [rows.length, vocab] of rows (indices into the last step's new tokens) of the last forward. */
  rowLogits(rows: Int32Array): Tensor;
}

/** A request's prompt logprobs as they are computed: entry i is prompt token i's (entry 0 stays null). */
export class PromptLogprobs {
  readonly entries: (TokenLogprob | null)[];
  /** The next row to score (rows already scored are skipped when a preempted request recomputes). */
  next = 0;

  constructor(
    readonly prompt: readonly number[],
    /** Alternatives per token. */
    readonly numTop: number,
  ) {
    this.entries = new Array<TokenLogprob | null>(prompt.length).fill(null);
  }

  /** Every prompt token after the first is scored. */
  get complete(): boolean {
    return this.next >= this.prompt.length - 1;
  }
}

export interface ScoringRequest extends SchedulableRequest {
  readonly promptLogprobs: PromptLogprobs | null;
}

interface ScoredRow {
  scoring: PromptLogprobs;
  /** The row's index among the step's new tokens. */
  row: number;
  /** The prompt position it scores (its own position + 1). */
  position: number;
}

/** The rows of a step that score prompt tokens not scored yet. */
export function rowsToScore<R extends ScoringRequest>(sequences: readonly ScheduledSequence<R>[]): ScoredRow[] {
  const rows: ScoredRow[] = [];
  let base = 0;
  for (const { request, start, numNew } of sequences) {
    const scoring = request.promptLogprobs;
    if (scoring && !scoring.complete) {
      const from = Math.max(start, scoring.next);
      const to = Math.min(start + numNew, scoring.prompt.length - 1); // row p scores token p + 1
      for (let p = from; p < to; p++) rows.push({ scoring, row: base + p - start, position: p + 1 });
    }
    base += numNew;
  }
  return rows;
}

/**
 * Scores `rows` of the last forward (which kept its hidden states) and records them in their requests.
 * `describe` turns a token id into its text and bytes.
 */
export async function scoreRows(
  model: RowLogitsModel,
  rows: readonly ScoredRow[],
  describe: (id: number) => { token: string; bytes: number[] },
): Promise<void> {
  for (let at = 0; at < rows.length; at += model.maxRowLogits) {
    const chunk = rows.slice(at, at + model.maxRowLogits);
    const numTop = Math.max(...chunk.map((r) => r.scoring.numTop));
    const targets = Int32Array.from(chunk, (r) => r.scoring.prompt[r.position]);
    const logits = model.rowLogits(Int32Array.from(chunk, (r) => r.row));
    // Greedy rows: the draw is not used, only the targets' statistics and the raw top-N.
    const result = await ops.sample(logits, chunk.map(() => ({ temperature: 0 })), { numTop, targets });
    chunk.forEach(({ scoring, position }, i) => {
      const top: TokenLogprob['top'] = [];
      for (let j = 0; j < scoring.numTop; j++) {
        const id = result.topTokens[i * numTop + j];
        if (id >= 0) top.push({ ...describe(id), tokenId: id, logprob: result.topLogprobs[i * numTop + j] });
      }
      const id = targets[i];
      scoring.entries[position] = { ...describe(id), tokenId: id, logprob: result.targetLogprobs[i], rank: result.targetRanks[i], top };
      scoring.next = Math.max(scoring.next, position);
    });
  }
}
