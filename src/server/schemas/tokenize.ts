// POST /tokenize and POST /detokenize, in vLLM's shapes: a prompt or chat messages → token ids (and
// optionally their strings); token ids → text.
import { ChatCompletionRequestSchema } from './chat.js';

export const TokenizeRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: ['string', 'null'] },
    prompt: { type: 'string' },
    messages: ChatCompletionRequestSchema.properties.messages,
    // Defaults as vLLM's: true for a prompt, false for messages (the template writes its own markup).
    add_special_tokens: { type: ['boolean', 'null'] },
    add_generation_prompt: { type: ['boolean', 'null'] },
    chat_template_kwargs: ChatCompletionRequestSchema.properties.chat_template_kwargs,
    return_token_strs: { type: ['boolean', 'null'] },
  },
} as const;

export interface TokenizeRequest {
  model?: string | null;
  prompt?: string;
  messages?: { role: 'developer' | 'system' | 'user' | 'assistant'; content: string | { type: 'text'; text: string }[] }[];
  add_special_tokens?: boolean | null;
  add_generation_prompt?: boolean | null;
  chat_template_kwargs?: { enable_thinking?: boolean | null } | null;
  return_token_strs?: boolean | null;
}

export const TokenizeResponseSchema = {
  type: 'object',
  required: ['count', 'max_model_len', 'tokens'],
  properties: {
    count: { type: 'integer' },
    max_model_len: { type: 'integer' },
    tokens: { type: 'array', items: { type: 'integer' } },
    token_strs: { type: ['array', 'null'], items: { type: 'string' } },
  },
} as const;

export const DetokenizeRequestSchema = {
  type: 'object',
  required: ['tokens'],
  additionalProperties: false,
  properties: {
    model: { type: ['string', 'null'] },
    tokens: { type: 'array', items: { type: 'integer' } },
  },
} as const;

export interface DetokenizeRequest {
  model?: string | null;
  tokens: number[];
}

export const DetokenizeResponseSchema = {
  type: 'object',
  required: ['prompt'],
  properties: { prompt: { type: 'string' } },
} as const;
