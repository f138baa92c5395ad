// OpenAI (and vLLM) request fields → the engine's SamplingOptions. Ranges were checked by the JSON
// schema; the engine checks again against the model (context length, vocabulary).
import type { SamplingOptions } from '../engine/types.js';
import { badRequest } from './errors.js';
import type { SamplingFields } from './schemas/common.js';

export interface LogprobRequest {
  logprobs: boolean;
  topLogprobs: number;
}

/** The options of choice 0; see `forChoice` for the others. */
export function toSamplingOptions(body: SamplingFields, maxTokens: number | null | undefined, logprobs: LogprobRequest): SamplingOptions {
  const options: SamplingOptions = {};
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | null | undefined) => {
    if (value !== null && value !== undefined) options[key] = value;
  };
  set('temperature', body.temperature);
  set('topP', body.top_p);
  // vLLM spells "off" as -1, the engine as ≤ 0.
  set('topK', body.top_k);
  set('minP', body.min_p);
  set('presencePenalty', body.presence_penalty);
  set('frequencyPenalty', body.frequency_penalty);
  set('repetitionPenalty', body.repetition_penalty);
  set('seed', body.seed);
  set('maxTokens', maxTokens);
  set('ignoreEos', body.ignore_eos);
  if (body.stop !== null && body.stop !== undefined) options.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (logprobs.logprobs) {
    options.logprobs = true;
    options.topLogprobs = logprobs.topLogprobs;
  }
  return options;
}

/**
 * The options of choice `index` of n: with a seed, each choice draws from its own stream (seed + index),
 * so `n` samples differ from each other yet the whole response is reproducible.
 */
export function forChoice(options: SamplingOptions, index: number): SamplingOptions {
  if (options.seed === undefined || index === 0) return options;
  return { ...options, seed: (options.seed + index) % (Number.MAX_SAFE_INTEGER + 1) };
}

/** logit_bias is accepted empty (some clients always send {}); biasing tokens is not implemented. */
export function refuseLogitBias(body: SamplingFields): void {
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0)
    throw badRequest('logit_bias is not supported by this server', 'logit_bias');
}
