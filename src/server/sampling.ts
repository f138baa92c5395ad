// OpenAI (and vLLM) request fields → the engine's SamplingOptions. Ranges were checked by the JSON
// schema; the engine checks again against the model (context length, vocabulary).
import type { SamplingOptions } from '../engine/types.js';
import type { SamplingFields } from './schemas/common.js';

export interface LogprobRequest {
  logprobs: boolean;
  topLogprobs: number;
}

/**
 * HTTP request field → SamplingParams field, for the fields that map one to one (vLLM spells "top_k
 * off" as -1, the engine as ≤ 0, so they agree). Typed against both sides: a field renamed on either
 * is a compile error here.
 */
export const HTTP_SAMPLING_FIELDS = {
  temperature: 'temperature',
  top_p: 'topP',
  top_k: 'topK',
  min_p: 'minP',
  presence_penalty: 'presencePenalty',
  frequency_penalty: 'frequencyPenalty',
  repetition_penalty: 'repetitionPenalty',
  seed: 'seed',
  ignore_eos: 'ignoreEos',
  stop_token_ids: 'stopTokenIds',
  min_tokens: 'minTokens',
  include_stop_str_in_output: 'includeStopStrInOutput',
  skip_special_tokens: 'skipSpecialTokens',
} as const satisfies { [H in keyof SamplingFields]?: OptionAccepting<NonNullable<SamplingFields[H]>> };

/** The SamplingOptions fields that accept a value of type T. */
type OptionAccepting<T> = { [K in keyof SamplingOptions]-?: T extends NonNullable<SamplingOptions[K]> ? K : never }[keyof SamplingOptions];
type HttpMapped = typeof HTTP_SAMPLING_FIELDS;

/** The options of choice 0; see `forChoice` for the others. */
export function toSamplingOptions(body: SamplingFields, maxTokens: number | null | undefined, logprobs: LogprobRequest): SamplingOptions {
  const options: Record<string, unknown> = {};
  for (const [http, field] of Object.entries(HTTP_SAMPLING_FIELDS)) {
    const value = body[http as keyof HttpMapped];
    if (value !== null && value !== undefined) options[field] = value;
  }
  if (maxTokens !== null && maxTokens !== undefined) options.maxTokens = maxTokens;
  if (body.stop !== null && body.stop !== undefined) options.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  // Keys are decimal token ids (the schema's propertyNames); the engine checks them against the vocabulary.
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0)
    options.logitBias = Object.fromEntries(Object.entries(body.logit_bias).map(([id, bias]) => [Number(id), bias]));
  if (logprobs.logprobs) {
    options.logprobs = true;
    options.topLogprobs = logprobs.topLogprobs;
  }
  return options as SamplingOptions;
}

/**
 * The options of choice `index` of n: with a seed, each choice draws from its own stream (seed + index),
 * so `n` samples differ from each other yet the whole response is reproducible.
 */
export function forChoice(options: SamplingOptions, index: number): SamplingOptions {
  if (options.seed === undefined || index === 0) return options;
  return { ...options, seed: (options.seed + index) % (Number.MAX_SAFE_INTEGER + 1) };
}
