// Batched decode for `bench e2e --batch B,…`: B greedy generations started together, one per prompt,
// and the aggregate decode rate while all B are decoding.
//
// Both engines decode their running sequences in lockstep — one token per sequence per step, the
// tokens of a step arriving together — but the sequences do not all start decoding at once (a
// sequence whose prompt was prefilled first decodes while later prompts are still being prefilled)
// nor stop at once. The measured window runs from the step that gave the last sequence its first
// token to the step that gave the first finishing sequence its last one: every sequence is decoding
// throughout, so it is B-wide batched decode and nothing else. Decode tok/s = the tokens of all
// sequences after the window's first step up to and including its last, over the window's length.
// At B = 1 this is exactly the batch-1 figure: (tokens − 1) / (last arrival − first arrival).
import type { Model } from '../src/index.js';
import type { LlamaCppPeer } from './peers/llamacpp.js';

export interface BatchSample {
  /** Aggregate decode tok/s over the window in which all sequences decode. */
  decodeTokPerS: number;
  /** Aggregate prefill tok/s: all prompt tokens over the time to the last sequence's first token. */
  prefillTokPerS: number;
  /** Decode tokens counted in the window, and its length in seconds. */
  windowTokens: number;
  windowSeconds: number;
}

/** Index of the arrival in `times` (sorted) closest to `t`: the token of the step that happened at t. */
function closest(times: readonly number[], t: number): number {
  let best = 0;
  for (let i = 1; i < times.length; i++) if (Math.abs(times[i] - t) < Math.abs(times[best] - t)) best = i;
  return best;
}

/**
 * The all-sequences-decoding window of one batched run. `arrivals[s]`: performance.now() of each token
 * of sequence s (its first token is the one after its prompt); `start`: when the requests were made.
 */
export function batchWindow(start: number, promptTokens: number, arrivals: readonly (readonly number[])[]): BatchSample {
  if (arrivals.length === 0 || arrivals.some((a) => a.length === 0)) throw new Error('batchWindow: every sequence needs at least one token');
  const from = Math.max(...arrivals.map((a) => a[0]));
  const to = Math.min(...arrivals.map((a) => a[a.length - 1]));
  let tokens = 0;
  for (const a of arrivals) tokens += closest(a, to) - closest(a, from);
  const seconds = (to - from) / 1000;
  if (!(seconds > 0) || tokens <= 0)
    throw new Error(`batched decode: no step with all ${arrivals.length} sequences decoding; generate more tokens per sequence (--decode-tokens)`);
  return {
    decodeTokPerS: tokens / seconds,
    prefillTokPerS: (arrivals.length * promptTokens) / ((from - start) / 1000),
    windowTokens: tokens,
    windowSeconds: seconds,
  };
}

/** Paralon: the prompts submitted to the engine together (continuous batching, as a server would). */
export async function runParalonBatch(model: Model, prompts: readonly number[][], decodeTokens: number): Promise<BatchSample> {
  const { start, arrivals } = await generateTogether(model, prompts, decodeTokens);
  return batchWindow(start, prompts[0].length, arrivals);
}

/** Greedy generations of 1 + decodeTokens tokens on all prompts at once; every token's arrival time. */
export async function generateTogether(model: Model, prompts: readonly number[][], decodeTokens: number): Promise<{ start: number; arrivals: number[][] }> {
  const arrivals = prompts.map((): number[] => []);
  const start = performance.now();
  await Promise.all(
    prompts.map(async (prompt, s) => {
      // logprobs on: one event per token as it is sampled (see e2e.ts).
      for await (const e of model.generate(prompt, { temperature: 0, maxTokens: 1 + decodeTokens, ignoreEos: true, logprobs: true })) {
        if (e.type === 'delta') for (let i = 0; i < e.tokenIds.length; i++) arrivals[s].push(performance.now());
      }
    }),
  );
  for (const a of arrivals) if (a.length !== 1 + decodeTokens) throw new Error(`Paralon produced ${a.length} tokens, expected ${1 + decodeTokens}`);
  return { start, arrivals };
}

/** llama.cpp: one context sequence per prompt, evaluated concurrently (node-llama-cpp batches them). */
export async function runLlamaCppBatch(peer: LlamaCppPeer, prompts: readonly number[][], decodeTokens: number): Promise<BatchSample> {
  const arrivals = prompts.map((): number[] => []);
  const start = performance.now();
  await peer.greedyParallel(prompts, 1 + decodeTokens, (s, _, at) => arrivals[s].push(at));
  for (const a of arrivals) if (a.length !== 1 + decodeTokens) throw new Error(`llama.cpp produced ${a.length} tokens, expected ${1 + decodeTokens}`);
  return batchWindow(start, prompts[0].length, arrivals);
}
