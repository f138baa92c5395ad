// POST /v1/chat/completions: the request, the response and the streamed chunk.
import type { FromSchema } from 'json-schema-to-ts';
import type { ToolCall } from '../../engine/types.js';
import { samplingProperties } from './common.js';
import { promptLogprobsProperty, promptLogprobsResponseSchema } from '../prompt-logprobs.js';

/** One call in an assistant message (request) or a response message. */
const ToolCallSchema = {
  type: 'object',
  required: ['id', 'type', 'function'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1 },
    type: { type: 'string', enum: ['function'] },
    function: {
      type: 'object',
      required: ['name', 'arguments'],
      additionalProperties: false,
      properties: { name: { type: 'string' }, arguments: { type: 'string' } },
    },
  },
} as const;

/** A streamed fragment of a call: id, type and name in its first chunk, argument text after. */
const ToolCallDeltaSchema = {
  type: 'object',
  required: ['index'],
  properties: {
    index: { type: 'integer' },
    id: { type: 'string' },
    type: { type: 'string' },
    function: { type: 'object', properties: { name: { type: 'string' }, arguments: { type: 'string' } } },
  },
} as const;

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
        required: ['role'],
        additionalProperties: false,
        properties: {
          // 'developer' is OpenAI's newer name for system instructions.
          role: { type: 'string', enum: ['developer', 'system', 'user', 'assistant', 'tool'] },
          // null only in an assistant message that made tool calls (checked by the route).
          content: {
            type: ['string', 'array', 'null'],
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
          // vLLM's newer name for reasoning_content; either is accepted (reasoning_content wins when both are set).
          reasoning: { type: ['string', 'null'] },
          tool_calls: { type: ['array', 'null'], items: ToolCallSchema },
          tool_call_id: { type: 'string', minLength: 1 },
          // OpenAI's SDK may echo these back from a response message.
          refusal: { type: ['string', 'null'] },
          annotations: { type: ['array', 'null'] },
          audio: { type: 'null' },
          function_call: { type: 'null' },
        },
      },
    },
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
    /** vLLM's extra: the rendered prompt's token logprobs with this many alternatives each. */
    prompt_logprobs: promptLogprobsProperty,
    chat_template_kwargs: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { enable_thinking: { type: ['boolean', 'null'] } },
    },
    tools: {
      type: ['array', 'null'],
      maxItems: 128,
      items: {
        type: 'object',
        required: ['type', 'function'],
        additionalProperties: false,
        properties: {
          type: { type: 'string', enum: ['function'] },
          function: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
              description: { type: 'string' },
              // A JSON Schema: checked against the meta-schema by the route (a 400 naming the tool).
              parameters: { type: ['object', 'boolean'] },
              strict: { type: ['boolean', 'null'] },
            },
          },
        },
      },
    },
    tool_choice: {
      anyOf: [
        { type: 'string', enum: ['none', 'auto', 'required'] },
        {
          type: 'object',
          required: ['type', 'function'],
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: ['function'] },
            function: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string' } } },
          },
        },
        { type: 'null' },
      ],
    },
    parallel_tool_calls: { type: ['boolean', 'null'] },
    response_format: {
      type: ['object', 'null'],
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: { type: 'string', enum: ['text', 'json_object', 'json_schema'] },
        json_schema: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            description: { type: 'string' },
            schema: { type: ['object', 'boolean'] },
            strict: { type: ['boolean', 'null'] },
          },
        },
      },
    },
    modalities: { type: ['array', 'null'], items: { type: 'string' } },
    // vLLM's extra: when the last message is the assistant's, its content starts the answer's content.
    echo: { type: ['boolean', 'null'] },
  },
} as const;

export type ChatCompletionRequest = FromSchema<typeof ChatCompletionRequestSchema>;
export type RequestMessage = ChatCompletionRequest['messages'][number];

const chatLogprobs = {
  type: ['object', 'null'],
  required: ['content'],
  properties: { content: { type: 'array', items: { $ref: 'ChatTokenLogprob#' } } },
} as const;

const finishReason = { type: ['string', 'null'], enum: ['stop', 'length', 'tool_calls', null] } as const;

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
              reasoning: { type: 'string' },
              tool_calls: { type: 'array', items: ToolCallSchema },
            },
          },
          finish_reason: finishReason,
          logprobs: chatLogprobs,
        },
      },
    },
    usage: { $ref: 'Usage#' },
    // On the response, not per choice, as vLLM answers it (every choice has the same prompt).
    prompt_logprobs: promptLogprobsResponseSchema,
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
              content: { type: ['string', 'null'] },
              reasoning_content: { type: 'string' },
              reasoning: { type: 'string' },
              tool_calls: { type: 'array', items: ToolCallDeltaSchema },
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
  /** reasoning_content and reasoning carry the same text: the older and the newer vLLM name, as clients read either. */
  message: { role: 'assistant'; content: string | null; reasoning_content?: string; reasoning?: string; tool_calls?: ToolCall[] };
  finish_reason: 'stop' | 'length' | 'tool_calls' | null;
  logprobs: { content: ChatTokenLogprob[] } | null;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ChatChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string | null; reasoning_content?: string; reasoning?: string; tool_calls?: ToolCallDelta[] };
  finish_reason: 'stop' | 'length' | 'tool_calls' | null;
  logprobs: { content: ChatTokenLogprob[] } | null;
}
