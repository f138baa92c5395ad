// Schemas shared by several routes, registered once with addSchema and referenced as { $ref: 'Id#' }.
// Request schemas are strict (no type coercion, unknown fields rejected; see app.ts's Ajv options);
// optional fields also accept null, as OpenAI's API does and as many clients send them. Request types
// are derived from the schemas (json-schema-to-ts's FromSchema), never written twice.
import type { FromSchema } from 'json-schema-to-ts';

export const ErrorResponseSchema = {
  $id: 'ErrorResponse',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: { type: ['string', 'null'] },
        code: { type: ['string', 'null'] },
      },
    },
  },
} as const;

export const UsageSchema = {
  $id: 'Usage',
  type: 'object',
  required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
  properties: {
    prompt_tokens: { type: 'integer' },
    completion_tokens: { type: 'integer' },
    total_tokens: { type: 'integer' },
  },
} as const;

/** One generated token's logprob in chat format (also the shape of its alternatives, minus top_logprobs). */
export const ChatTokenLogprobSchema = {
  $id: 'ChatTokenLogprob',
  type: 'object',
  required: ['token', 'logprob', 'bytes', 'top_logprobs'],
  properties: {
    token: { type: 'string' },
    logprob: { type: 'number' },
    bytes: { type: 'array', items: { type: 'integer' } },
    top_logprobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['token', 'logprob', 'bytes'],
        properties: {
          token: { type: 'string' },
          logprob: { type: 'number' },
          bytes: { type: 'array', items: { type: 'integer' } },
        },
      },
    },
  },
} as const;

/** The legacy completions logprobs object (parallel arrays). */
export const CompletionLogprobsSchema = {
  $id: 'CompletionLogprobs',
  type: 'object',
  required: ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset'],
  properties: {
    tokens: { type: 'array', items: { type: 'string' } },
    token_logprobs: { type: 'array', items: { type: ['number', 'null'] } },
    top_logprobs: { type: 'array', items: { anyOf: [{ type: 'object', additionalProperties: { type: 'number' } }, { type: 'null' }] } },
    text_offset: { type: 'array', items: { type: 'integer' } },
  },
} as const;

/** Samples per prompt at most (`n`); each is a sequence in the engine. */
export const MAX_N = 16;

/** The schema, also accepting null (its type a literal tuple, so FromSchema keeps the precise type). */
const nullable = <const T extends { type: string }>(schema: T) =>
  ({ ...schema, type: [schema.type, 'null'] }) as Omit<T, 'type'> & { type: readonly [T['type'], 'null'] };

/**
 * Request fields common to chat and text completions: sampling, stopping, logprobs, streaming,
 * and vLLM's extras (top_k, min_p, repetition_penalty, ignore_eos).
 */
export const samplingProperties = {
  model: { type: 'string', minLength: 1 },
  temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
  top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable({ type: 'integer', minimum: -1 }),
  min_p: nullable({ type: 'number', minimum: 0, maximum: 1 }),
  presence_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  frequency_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  repetition_penalty: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 10 }),
  seed: nullable({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  max_tokens: nullable({ type: 'integer', minimum: 1 }),
  n: nullable({ type: 'integer', minimum: 1, maximum: MAX_N }),
  stop: {
    type: ['string', 'array', 'null'],
    minLength: 1,
    maxItems: 16,
    items: { type: 'string', minLength: 1 },
  },
  ignore_eos: nullable({ type: 'boolean' }),
  // vLLM's extras: end tokens besides EOS, a floor under the completion length, the stop string kept
  // in the text, special tokens shown; best_of is accepted only equal to n (route check).
  stop_token_ids: { type: ['array', 'null'], maxItems: 64, items: { type: 'integer', minimum: 0 } },
  min_tokens: nullable({ type: 'integer', minimum: 0 }),
  include_stop_str_in_output: nullable({ type: 'boolean' }),
  skip_special_tokens: nullable({ type: 'boolean' }),
  best_of: nullable({ type: 'integer', minimum: 1 }),
  stream: nullable({ type: 'boolean' }),
  stream_options: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: { include_usage: nullable({ type: 'boolean' }) },
  },
  user: nullable({ type: 'string' }),
  // Accepted so that clients which always send them work; they change nothing here (store: there is
  // no stored-completions API; service_tier: one tier).
  store: nullable({ type: 'boolean' }),
  metadata: { type: ['object', 'null'], maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } },
  service_tier: nullable({ type: 'string' }),
  // OpenAI's { "token id": bias }; ids beyond the model's vocabulary are refused by the engine.
  logit_bias: {
    type: ['object', 'null'],
    maxProperties: 1024,
    propertyNames: { pattern: '^(0|[1-9][0-9]{0,9})$' },
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
  },
} as const;

/** The request fields of samplingProperties as TypeScript, derived from the schema. */
export type SamplingFields = FromSchema<{ type: 'object'; required: ['model']; additionalProperties: false; properties: typeof samplingProperties }>;

export const sharedSchemas = [ErrorResponseSchema, UsageSchema, ChatTokenLogprobSchema, CompletionLogprobsSchema];

/** Error responses every /v1 route may give, for its `response` schema. */
export const errorResponses = {
  400: { $ref: 'ErrorResponse#' },
  401: { $ref: 'ErrorResponse#' },
  404: { $ref: 'ErrorResponse#' },
  413: { $ref: 'ErrorResponse#' },
  415: { $ref: 'ErrorResponse#' },
  429: { $ref: 'ErrorResponse#' },
  500: { $ref: 'ErrorResponse#' },
  503: { $ref: 'ErrorResponse#' },
} as const;
