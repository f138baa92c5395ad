// POST /v1/completions (the legacy text completions API, as evaluation tools use it).
import type { FromSchema } from 'json-schema-to-ts';
import { samplingProperties } from './common.js';
import { promptLogprobsProperty, promptLogprobsResponseSchema, type VllmPromptLogprobs } from '../prompt-logprobs.js';

const tokenIds = { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } } as const;

export const CompletionRequestSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    // A string, a batch of strings, one prompt as token ids, or a batch of token-id prompts.
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string' } },
        tokenIds,
        { type: 'array', minItems: 1, maxItems: 64, items: tokenIds },
      ],
    },
    echo: { type: ['boolean', 'null'] },
    /** Number of alternatives per token (0: only the chosen token's logprob); with echo, the prompt's too. */
    logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
    // 0 scores the prompt only (echo with logprobs, or prompt_logprobs), as evaluation harnesses ask.
    max_tokens: { type: ['integer', 'null'], minimum: 0 },
    /** vLLM's extra: the prompt tokens' logprobs with this many alternatives each. */
    prompt_logprobs: promptLogprobsProperty,
  },
} as const;

export type CompletionRequest = FromSchema<typeof CompletionRequestSchema>;

const completionChoice = {
  type: 'object',
  required: ['index', 'text', 'finish_reason', 'logprobs'],
  properties: {
    index: { type: 'integer' },
    text: { type: 'string' },
    finish_reason: { type: ['string', 'null'], enum: ['stop', 'length', null] },
    logprobs: { anyOf: [{ $ref: 'CompletionLogprobs#' }, { type: 'null' }] },
    prompt_logprobs: promptLogprobsResponseSchema,
  },
} as const;

export const CompletionSchema = {
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices', 'usage'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'text_completion' },
    created: { type: 'integer' },
    model: { type: 'string' },
    choices: { type: 'array', items: completionChoice },
    usage: { $ref: 'Usage#' },
  },
} as const;

export const CompletionChunkSchema = {
  $id: 'CompletionChunk',
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'text_completion' },
    created: { type: 'integer' },
    model: { type: 'string' },
    choices: { type: 'array', items: completionChoice },
    usage: { anyOf: [{ $ref: 'Usage#' }, { type: 'null' }] },
  },
} as const;

export interface CompletionLogprobs {
  tokens: string[];
  /** null for an echoed prompt's first token (nothing precedes it). */
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  finish_reason: 'stop' | 'length' | null;
  logprobs: CompletionLogprobs | null;
  prompt_logprobs?: VllmPromptLogprobs | null;
}
