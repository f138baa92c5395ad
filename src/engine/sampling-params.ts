// The one definition of a request's sampling parameters (vLLM's SamplingParams in spirit). The
// engine resolves every request to a SamplingParams; what callers pass (SamplingOptions), the
// server's HTTP mapping (server/sampling.ts) and the sample op's row (deviceRow) derive from it.
import { ops, type SampleParamField, type SamplingRow } from '../runtime/index.js';

/** The op row's parameters a request sets (the op's `offset` is the engine's step counter). */
export type DeviceSamplingField = Exclude<SampleParamField, 'offset'>;

/** Every sampling parameter of a request, resolved: defaults filled in and checked. */
export interface SamplingParams extends Record<DeviceSamplingField, number> {
  /** 0 = greedy. Default: generation_config.json's, else 1. */
  temperature: number;
  /** 1: off. */
  topP: number;
  /** ≤ 0: off. */
  topK: number;
  /** 0: off. */
  minP: number;
  /** Subtracted once from the logit of every token already generated. */
  presencePenalty: number;
  /** Subtracted per occurrence in the generated tokens. */
  frequencyPenalty: number;
  /** 1: off; divides positive (multiplies negative) logits of tokens in the prompt or output. */
  repetitionPenalty: number;
  /** Same seed + same prompt + same options → same tokens. Random when absent. */
  seed: number;
  /** Token id → value added to its logit before sampling (OpenAI's logit_bias: −100…100). */
  logitBias: ReadonlyMap<number, number>;
  /** Completion tokens at most (default: until the context is full). */
  maxTokens: number;
  /** Strings that end generation; not emitted (unless includeStopStrInOutput), may span tokens. */
  stop: string[];
  /** Tokens that end generation besides EOS (vLLM's stop_token_ids); their text is not emitted (unless includeStopStrInOutput). */
  stopTokenIds: number[];
  /** Keep generating past EOS tokens (stopTokenIds still stop). */
  ignoreEos: boolean;
  /** Completion tokens before EOS, stopTokenIds or a stop string may end generation (those tokens are masked until then). */
  minTokens: number;
  /** Emit the stop string, or the stop token's text, that ended generation. */
  includeStopStrInOutput: boolean;
  /** Leave special tokens (<|im_end|>, …) out of the text (default true). */
  skipSpecialTokens: boolean;
  /** Return the chosen token's logprob (and topLogprobs alternatives), of the raw logits. */
  logprobs: boolean;
  topLogprobs: number;
  /**
   * Score the prompt: each prompt token's logprob given the tokens before it, with this many top
   * alternatives (0…20); null: off. The prompt is then computed from its first token (no prefix-cache
   * reuse). With maxTokens 0 a request only scores its prompt.
   */
  promptLogprobs: number | null;
}

/** What a caller passes: any subset of SamplingParams; logitBias as a plain { tokenId: bias } object. */
export type SamplingOptions = Partial<Omit<SamplingParams, 'logitBias'>> & {
  /** Token id → value added to its logit before sampling, −100…100 (100 forces, −100 bans a token). */
  logitBias?: Readonly<Record<number, number>>;
};

/** The device fields of SamplingParams, in the op's order. */
export const DEVICE_SAMPLING_FIELDS = ops.SAMPLE_PARAM_FIELDS.filter((f): f is DeviceSamplingField => f !== 'offset');

/**
 * Values used when neither the request nor the model's generation config sets a field: OpenAI's
 * temperature 1, every other parameter off. (The seed, when absent, is drawn at random.)
 */
export const SAMPLING_FALLBACKS: Omit<Record<DeviceSamplingField, number>, 'seed'> = (() => {
  const { seed: _seed, offset: _offset, ...off } = ops.SAMPLE_PARAM_OFF;
  return { temperature: 1, ...off };
})();

/** True when a penalty needs the request's token counts. */
export function usesPenalties(p: SamplingParams): boolean {
  return p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
}

/** The sample op's row for a request at step `offset` (penalty lists and mask are added by the engine). */
export function deviceRow(p: SamplingParams, offset: number, bias: { tokens: Int32Array; values: Float64Array } | null): SamplingRow {
  const row: SamplingRow = { temperature: p.temperature, offset };
  for (const field of DEVICE_SAMPLING_FIELDS) row[field] = p[field];
  if (bias) {
    row.biasTokens = bias.tokens;
    row.biasValues = bias.values;
  }
  return row;
}
