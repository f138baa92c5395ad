// POST /v1/chat/completions: the request, the response and the streamed chunk.
import type { FromSchema } from 'json-schema-to-ts';
import { samplingProperties } from './common.js';

export const ChatCompletionRequestSchema = {
  type: 'object',
  required: ['model', 'messages'],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        additionalProperties: false,
        properties: {
          // 'developer' is OpenAI's newer name for system instructions.
          role: { type: 'string', enum: ['developer', 'system', 'user', 'assistant'] },
          content: {
            type: ['string', 'array'],
            items: {
              type: 'object',
              required: ['type', 'text'],
              additionalProperties: false,
              properties: { type: { type: 'string', enum: ['text'] }, text: { type: 'string' } },
            },
          },
          name: { type: 'string' },
          // What this server returns in an assistant message, so a client can send the message back.
          reasoning_content: { type: ['string', 'null'] },
        },
      },
    },
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
    chat_template_kwargs: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { enable_thinking: { type: ['boolean', 'null'] } },
    },
    // Function calling and structured output are not implemented: their neutral values are accepted
    // (SDKs and frameworks send them by default), anything else is refused by the route by name.
    tools: { type: ['array', 'null'] },
    tool_choice: { type: ['string', 'object', 'null'] },
    parallel_tool_calls: { type: ['boolean', 'null'] },
    response_format: { type: ['object', 'null'], required: ['type'], properties: { type: { type: 'string' } } },
    modalities: { type: ['array', 'null'], items: { type: 'string' } },
  },
} as const;

export type ChatCompletionRequest = FromSchema<typeof ChatCompletionRequestSchema>;

const chatLogprobs = {
  type: ['object', 'null'],
  required: ['content'],
  properties: { content: { type: 'array', items: { $ref: 'ChatTokenLogprob#' } } },
} as const;

const finishReason = { type: ['string', 'null'], enum: ['stop', 'length', null] } as const;

export const ChatCompletionSchema = {
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices', 'usage'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'chat.completion' },
    created: { type: 'integer' },
    model: { type: 'string' },
    choices: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'message', 'finish_reason', 'logprobs'],
        properties: {
          index: { type: 'integer' },
          message: {
            type: 'object',
            required: ['role', 'content'],
            properties: {
              role: { type: 'string' },
              content: { type: ['string', 'null'] },
              reasoning_content: { type: 'string' },
            },
          },
          finish_reason: finishReason,
          logprobs: chatLogprobs,
        },
      },
    },
    usage: { $ref: 'Usage#' },
  },
} as const;

export const ChatCompletionChunkSchema = {
  $id: 'ChatCompletionChunk',
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'chat.completion.chunk' },
    created: { type: 'integer' },
    model: { type: 'string' },
    choices: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'delta', 'finish_reason', 'logprobs'],
        properties: {
          index: { type: 'integer' },
          delta: {
            type: 'object',
            properties: {
              role: { type: 'string' },
              content: { type: 'string' },
              reasoning_content: { type: 'string' },
            },
          },
          finish_reason: finishReason,
          logprobs: chatLogprobs,
        },
      },
    },
    // Present (null, then the totals in a last chunk) only when stream_options.include_usage is set.
    usage: { anyOf: [{ $ref: 'Usage#' }, { type: 'null' }] },
  },
} as const;

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export interface ChatChoice {
  index: number;
  message: { role: 'assistant'; content: string | null; reasoning_content?: string };
  finish_reason: 'stop' | 'length' | null;
  logprobs: { content: ChatTokenLogprob[] } | null;
}

export interface ChatChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string; reasoning_content?: string };
  finish_reason: 'stop' | 'length' | null;
  logprobs: { content: ChatTokenLogprob[] } | null;
}
