// POST /v1/responses (stateless subset): the request and the response object. Stream events are
// plain JSON (see routes/responses.ts); their shapes are the ones the `openai` SDK's accumulator checks.
import type { FromSchema } from 'json-schema-to-ts';

/** input_text in a user/system/developer message; output_text when a client sends an answer back. */
const ContentPartSchema = {
  type: 'object',
  required: ['type', 'text'],
  properties: {
    type: { type: 'string', enum: ['input_text', 'output_text'] },
    text: { type: 'string' },
    annotations: { type: 'array' },
    logprobs: { type: 'array' },
  },
  additionalProperties: false,
} as const;

const MessageItemSchema = {
  type: 'object',
  required: ['role', 'content'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', const: 'message' },
    role: { type: 'string', enum: ['user', 'system', 'developer', 'assistant'] },
    content: { anyOf: [{ type: 'string' }, { type: 'array', items: ContentPartSchema }] },
    id: { type: 'string' },
    status: { type: 'string' },
  },
} as const;

const FunctionCallItemSchema = {
  type: 'object',
  required: ['type', 'call_id', 'name', 'arguments'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', const: 'function_call' },
    call_id: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    arguments: { type: 'string' },
    id: { type: 'string' },
    status: { type: 'string' },
  },
} as const;

const FunctionCallOutputItemSchema = {
  type: 'object',
  required: ['type', 'call_id', 'output'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', const: 'function_call_output' },
    call_id: { type: 'string', minLength: 1 },
    output: { type: 'string' },
    id: { type: 'string' },
    status: { type: 'string' },
  },
} as const;

/** A reasoning item of an earlier answer, sent back with it: its text becomes that turn's reasoning. */
const ReasoningItemSchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', const: 'reasoning' },
    id: { type: 'string' },
    summary: { type: 'array', items: { type: 'object', required: ['text'], properties: { type: { type: 'string' }, text: { type: 'string' } } } },
    content: { type: 'array', items: { type: 'object', required: ['text'], properties: { type: { type: 'string' }, text: { type: 'string' } } } },
    encrypted_content: { type: ['string', 'null'] },
    status: { type: 'string' },
  },
} as const;

const nullableNumber = (min: number, max: number) => ({ type: ['number', 'null'], minimum: min, maximum: max }) as const;

export const ResponseRequestSchema = {
  type: 'object',
  required: ['model', 'input'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1 },
    input: {
      anyOf: [
        { type: 'string' },
        {
          type: 'array',
          minItems: 1,
          items: { anyOf: [MessageItemSchema, FunctionCallItemSchema, FunctionCallOutputItemSchema, ReasoningItemSchema] },
        },
      ],
    },
    instructions: { type: ['string', 'null'] },
    max_output_tokens: { type: ['integer', 'null'], minimum: 1 },
    temperature: nullableNumber(0, 2),
    top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
    stream: { type: ['boolean', 'null'] },
    tools: {
      type: ['array', 'null'],
      maxItems: 128,
      items: {
        type: 'object',
        required: ['type', 'name'],
        additionalProperties: false,
        properties: {
          type: { type: 'string', enum: ['function'] },
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
          description: { type: ['string', 'null'] },
          parameters: { type: ['object', 'boolean', 'null'] },
          strict: { type: ['boolean', 'null'] },
        },
      },
    },
    tool_choice: {
      anyOf: [
        { type: 'string', enum: ['none', 'auto', 'required'] },
        {
          type: 'object',
          required: ['type', 'name'],
          additionalProperties: false,
          properties: { type: { type: 'string', enum: ['function'] }, name: { type: 'string' } },
        },
        { type: 'null' },
      ],
    },
    parallel_tool_calls: { type: ['boolean', 'null'] },
    text: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        format: {
          type: 'object',
          required: ['type'],
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: ['text', 'json_object', 'json_schema'] },
            name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            description: { type: 'string' },
            schema: { type: ['object', 'boolean'] },
            strict: { type: ['boolean', 'null'] },
          },
        },
        verbosity: { type: ['string', 'null'] },
      },
    },
    // Qwen3's thinking switch: effort 'none' turns it off; any other effort leaves it on.
    reasoning: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { effort: { type: ['string', 'null'] }, summary: { type: ['string', 'null'] }, generate_summary: { type: ['string', 'null'] } },
    },
    // vLLM's extra, as on chat completions.
    chat_template_kwargs: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: { enable_thinking: { type: ['boolean', 'null'] } },
    },
    // Stateless server: refused by the route when set (store only when true).
    previous_response_id: { type: ['string', 'null'] },
    store: { type: ['boolean', 'null'] },
    // Accepted and ignored, as on the other routes.
    metadata: { type: ['object', 'null'], maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } },
    user: { type: ['string', 'null'] },
    service_tier: { type: ['string', 'null'] },
    truncation: { type: ['string', 'null'], enum: ['disabled', null] },
    include: { type: ['array', 'null'], items: { type: 'string' } },
  },
} as const;

export type ResponseRequest = FromSchema<typeof ResponseRequestSchema>;
export type ResponseInputItem = Exclude<ResponseRequest['input'], string>[number];

export const ResponseUsageSchema = {
  type: 'object',
  required: ['input_tokens', 'input_tokens_details', 'output_tokens', 'output_tokens_details', 'total_tokens'],
  properties: {
    input_tokens: { type: 'integer' },
    input_tokens_details: { type: 'object', properties: { cached_tokens: { type: 'integer' } } },
    output_tokens: { type: 'integer' },
    output_tokens_details: { type: 'object', properties: { reasoning_tokens: { type: 'integer' } } },
    total_tokens: { type: 'integer' },
  },
} as const;

/** The response object; its output items are passed through as built (their shapes are in the route). */
export const ResponseObjectSchema = {
  type: 'object',
  required: ['id', 'object', 'created_at', 'status', 'model', 'output', 'usage'],
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'response' },
    created_at: { type: 'integer' },
    status: { type: 'string', enum: ['completed', 'incomplete', 'in_progress'] },
    model: { type: 'string' },
    output: { type: 'array', items: { type: 'object', additionalProperties: true } },
    usage: { anyOf: [ResponseUsageSchema, { type: 'null' }] },
  },
} as const;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type OutputItem =
  | { type: 'reasoning'; id: string; summary: []; content: { type: 'reasoning_text'; text: string }[]; status: ItemStatus }
  | {
      type: 'message';
      id: string;
      role: 'assistant';
      status: ItemStatus;
      content: { type: 'output_text'; text: string; annotations: []; logprobs: [] }[];
    }
  | { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status: ItemStatus };

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';
