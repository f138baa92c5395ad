// POST /v1/responses, the stateless subset of OpenAI's Responses API: `input` (a string or message,
// function_call, function_call_output and reasoning items) plus `instructions` become chat messages
// rendered by the model's template, and the answer comes back as output items — Qwen3's reasoning as a
// `reasoning` item, the text as a `message` item, tool calls as `function_call` items — either whole or
// as typed SSE events (`response.created` … `response.completed`, each with its sequence_number).
// Tools, tool_choice and text.format reuse the chat route's grammar enforcement. Nothing is stored:
// previous_response_id and store: true are refused.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toolCallId } from '../../engine/chat.js';
import { RequestError } from '../../engine/engine.js';
import type { ChatMessage, ResponseFormat, SamplingOptions, Tool, ToolChoice, ToolCall, Usage } from '../../engine/types.js';
import type { ReasoningStart } from '../../tokenizer/reasoning.js';
import { ChoiceText, type ChoiceTextPart } from '../choice-text.js';
import type { ServerContext } from '../context.js';
import { badRequest, type ApiError } from '../errors.js';
import type { Generation } from '../generation.js';
import { collectChoices, startChoices, streamChoices, type DeltaEvent, type Finish } from '../respond.js';
import { errorResponses } from '../schemas/common.js';
import {
  ResponseObjectSchema,
  ResponseRequestSchema,
  type ItemStatus,
  type OutputItem,
  type ResponseInputItem,
  type ResponseRequest,
  type ResponseUsage,
} from '../schemas/responses.js';

export async function responsesRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.post(
    '/responses',
    { schema: { body: ResponseRequestSchema, response: { 200: ResponseObjectSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: ResponseRequest }>, reply: FastifyReply) => {
      const body = request.body;
      if (body.previous_response_id !== undefined && body.previous_response_id !== null)
        throw badRequest('previous_response_id is not supported: this server is stateless; send the whole conversation in input', 'previous_response_id');
      if (body.store === true) throw badRequest('store: true is not supported: this server is stateless and keeps no responses', 'store');
      const model = ctx.modelFor(body.model);
      const prepared = await withResponsesParams(() =>
        model.prepareChat(toChatMessages(body.instructions ?? null, body.input), {
          enableThinking: enableThinking(body),
          addGenerationPrompt: true,
          tools: body.tools?.map(toTool),
          toolChoice: toToolChoice(body.tool_choice),
          parallelToolCalls: body.parallel_tool_calls ?? undefined,
          responseFormat: toResponseFormat(body.text?.format),
        }),
      );
      const options: SamplingOptions = {};
      if (body.temperature !== null && body.temperature !== undefined) options.temperature = body.temperature;
      if (body.top_p !== null && body.top_p !== undefined) options.topP = body.top_p;
      if (body.max_output_tokens !== null && body.max_output_tokens !== undefined) options.maxTokens = body.max_output_tokens;
      const generation = await withResponsesParams(async () =>
        startChoices(ctx, model, request, reply, 'responses', {
          prompts: [prepared.promptTokens],
          n: 1,
          options,
          constraints: [await prepared.constraint()],
        }),
      );
      const output = new OutputBuilder(prepared.reasoningStart, prepared.parseToolCalls);
      const response = (status: ResponseStatus, usage: Usage | null) => responseObject(ctx, generation, body, status, output, usage);
      if (!body.stream) {
        const usage = await collectChoices(generation, {
          delta: (_, event) => (output.delta(event), []),
          finish: (_, reason) => (output.finish(reason), []),
        });
        return response(output.finishReason === 'length' ? 'incomplete' : 'completed', usage);
      }
      return stream(reply, generation, output, response);
    },
  );
}

/** Runs a step of preparation, naming this route's fields in errors (input, text.format, tools[i].parameters, max_output_tokens). */
async function withResponsesParams<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof RequestError) || error.param === null) throw error;
    const param = error.param
      .replace(/^messages\b.*/, 'input')
      .replace(/^response_format\.json_schema\.schema$/, 'text.format.schema')
      .replace(/^response_format\b/, 'text.format')
      .replace(/^(tools\[\d+\])\.function\./, '$1.')
      .replace(/^max_tokens$/, 'max_output_tokens');
    throw new RequestError(error.message.replace(/response_format/g, 'text.format').replace(/\bmax_tokens\b/g, 'max_output_tokens'), param);
  }
}

function enableThinking(body: ResponseRequest): boolean | undefined {
  const kwarg = body.chat_template_kwargs?.enable_thinking;
  if (kwarg !== null && kwarg !== undefined) return kwarg;
  const effort = body.reasoning?.effort;
  if (effort === null || effort === undefined) return undefined;
  return effort !== 'none';
}

function toTool(t: NonNullable<ResponseRequest['tools']>[number]): Tool {
  return {
    type: 'function',
    function: {
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parameters !== null && t.parameters !== undefined ? { parameters: t.parameters } : {}),
      strict: t.strict ?? null,
    },
  };
}

function toToolChoice(choice: ResponseRequest['tool_choice']): ToolChoice | undefined {
  if (choice === null || choice === undefined) return undefined;
  if (typeof choice === 'string') return choice;
  return { type: 'function', function: { name: choice.name } };
}

function toResponseFormat(format: NonNullable<ResponseRequest['text']>['format']): ResponseFormat | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.name === undefined) throw badRequest("text.format of type 'json_schema' needs a name", 'text.format.name');
  if (format.schema === undefined) throw badRequest("text.format of type 'json_schema' needs a schema", 'text.format.schema');
  return {
    type: 'json_schema',
    json_schema: { name: format.name, schema: format.schema, strict: format.strict ?? null, ...(format.description ? { description: format.description } : {}) },
  };
}

/**
 * instructions + input → chat messages. An answer sent back (reasoning, message and function_call
 * items in a row) becomes one assistant turn; function_call_output items become tool messages.
 */
function toChatMessages(instructions: string | null, input: ResponseRequest['input']): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
    return messages;
  }
  let reasoning: string | null = null;
  /** The assistant turn being assembled from consecutive answer items, if any. */
  const assistant = (): Extract<ChatMessage, { role: 'assistant' }> => {
    const last = messages[messages.length - 1];
    if (last?.role === 'assistant') return last;
    const turn: Extract<ChatMessage, { role: 'assistant' }> = { role: 'assistant', content: null };
    messages.push(turn);
    return turn;
  };
  input.forEach((item: ResponseInputItem, i) => {
    if (item.type === 'reasoning') {
      reasoning = (item.content ?? item.summary ?? []).map((p) => p.text).join('\n');
      return;
    }
    if (item.type === 'function_call') {
      const turn = assistant();
      const call: ToolCall = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
      turn.tool_calls = [...(turn.tool_calls ?? []), call];
      if (reasoning !== null) turn.reasoning_content = reasoning;
      reasoning = null;
      return;
    }
    if (item.type === 'function_call_output') {
      messages.push({ role: 'tool', content: item.output, tool_call_id: item.call_id });
      return;
    }
    const text = typeof item.content === 'string' ? item.content : item.content.map((p) => p.text).join('\n');
    if (item.role === 'assistant') {
      const turn = assistant();
      turn.content = (turn.content ?? '') + text;
      if (reasoning !== null) turn.reasoning_content = reasoning;
      reasoning = null;
      return;
    }
    if (typeof item.content !== 'string' && item.content.some((p) => p.type !== 'input_text'))
      throw badRequest(`input[${i}]: a ${item.role} message's content parts must be input_text`, `input[${i}].content`);
    messages.push({ role: item.role === 'user' ? 'user' : 'system', content: text });
  });
  return messages;
}

const itemId = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url')}`;

/** A Responses stream event, before its sequence_number. */
type ResponseEvent = { type: string } & Record<string, unknown>;

/**
 * Builds the output items from the generated text, as they open, grow and close; each step returns
 * the stream events it implies (ignored when collecting).
 */
class OutputBuilder {
  readonly items: OutputItem[] = [];
  finishReason: Finish | null = null;
  /** Output tokens before the answer proper started, once reasoning was seen (Qwen3's think block). */
  reasoningTokens = 0;
  #tokensBeforeAnswer = 0;
  #answerStarted = false;
  #sawReasoning = false;
  readonly #text: ChoiceText;
  /** The item still growing: reasoning or message text, or a function call's arguments. */
  #open: OutputItem | null = null;

  constructor(start: ReasoningStart, parseToolCalls: boolean) {
    this.#text = new ChoiceText(start, parseToolCalls);
  }

  delta(event: DeltaEvent): ResponseEvent[] {
    const out = this.#text.push(event.text);
    if (!this.#answerStarted) {
      this.#tokensBeforeAnswer += event.tokenIds.length;
      if (out.parts.length > 0) {
        this.#answerStarted = true;
        this.#tokensBeforeAnswer -= event.tokenIds.length;
      }
    }
    return this.#apply(out);
  }

  finish(reason: Finish): ResponseEvent[] {
    const events = this.#apply(this.#text.flush());
    this.finishReason = reason;
    if (this.#sawReasoning) this.reasoningTokens = this.#tokensBeforeAnswer;
    events.push(...this.#close(reason === 'length' ? 'incomplete' : 'completed'));
    return events;
  }

  #apply(out: ChoiceTextPart): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    if (out.reasoning) {
      this.#sawReasoning = true;
      events.push(...this.#text_('reasoning', out.reasoning));
    }
    for (const p of out.parts) {
      if (p.type === 'text') events.push(...this.#text_('message', p.text));
      else if (p.type === 'call') {
        events.push(...this.#close('completed'));
        const item: OutputItem = { type: 'function_call', id: itemId('fc'), call_id: toolCallId(), name: p.name, arguments: '', status: 'in_progress' };
        events.push(...this.#add(item));
      } else if (p.type === 'arguments' && this.#open?.type === 'function_call') {
        this.#open.arguments += p.text;
        events.push({ type: 'response.function_call_arguments.delta', item_id: this.#open.id, output_index: this.items.length - 1, delta: p.text });
      }
    }
    return events;
  }

  /** Text for a reasoning or message item: appended to the open one of that kind, or a new one. */
  #text_(kind: 'reasoning' | 'message', text: string): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    if (this.#open?.type !== kind) {
      events.push(...this.#close('completed'));
      const item: OutputItem =
        kind === 'reasoning'
          ? { type: 'reasoning', id: itemId('rs'), summary: [], content: [], status: 'in_progress' }
          : { type: 'message', id: itemId('msg'), role: 'assistant', status: 'in_progress', content: [] };
      events.push(...this.#add(item));
      const part = kind === 'reasoning' ? { type: 'reasoning_text' as const, text: '' } : { type: 'output_text' as const, text: '', annotations: [] as [], logprobs: [] as [] };
      events.push({ type: 'response.content_part.added', item_id: item.id, output_index: this.items.length - 1, content_index: 0, part: { ...part } });
      if (item.type === 'reasoning' && part.type === 'reasoning_text') item.content.push(part);
      else if (item.type === 'message' && part.type === 'output_text') item.content.push(part);
    }
    const item = this.#open as Extract<OutputItem, { type: 'reasoning' | 'message' }>;
    item.content[0].text += text;
    const where = { item_id: item.id, output_index: this.items.length - 1, content_index: 0 };
    events.push(
      kind === 'reasoning'
        ? { type: 'response.reasoning_text.delta', ...where, delta: text }
        : { type: 'response.output_text.delta', ...where, delta: text, logprobs: [] },
    );
    return events;
  }

  #add(item: OutputItem): ResponseEvent[] {
    this.items.push(item);
    this.#open = item;
    return [{ type: 'response.output_item.added', output_index: this.items.length - 1, item: structuredClone(item) }];
  }

  /** Ends the open item: its done events, then output_item.done with the whole item. */
  #close(status: ItemStatus): ResponseEvent[] {
    const item = this.#open;
    if (item === null) return [];
    this.#open = null;
    item.status = status;
    const where = { item_id: item.id, output_index: this.items.length - 1 };
    const events: ResponseEvent[] = [];
    if (item.type === 'function_call') {
      events.push({ type: 'response.function_call_arguments.done', ...where, name: item.name, arguments: item.arguments });
    } else {
      const part = item.content[0];
      events.push(
        item.type === 'reasoning'
          ? { type: 'response.reasoning_text.done', ...where, content_index: 0, text: part.text }
          : { type: 'response.output_text.done', ...where, content_index: 0, text: part.text, logprobs: [] },
        { type: 'response.content_part.done', ...where, content_index: 0, part: { ...part } },
      );
    }
    events.push({ type: 'response.output_item.done', output_index: where.output_index, item: structuredClone(item) });
    return events;
  }
}

type ResponseStatus = 'in_progress' | 'completed' | 'incomplete';

function responseObject(ctx: ServerContext, generation: Generation, body: ResponseRequest, status: ResponseStatus, output: OutputBuilder, usage: Usage | null) {
  return {
    id: `resp_${generation.id}`,
    object: 'response',
    created_at: generation.created,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: ctx.modelId,
    output: status === 'in_progress' ? [] : structuredClone(output.items),
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: false,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => ({ type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null })),
    top_p: body.top_p ?? null,
    truncation: 'disabled',
    metadata: body.metadata ?? {},
    usage: usage === null ? null : responseUsage(usage, output.reasoningTokens),
  };
}

function responseUsage(u: Usage, reasoningTokens: number): ResponseUsage {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: u.totalTokens,
  };
}

/** `event: <type>` and `data: <json>` with the stream's next sequence_number. */
function stream(
  reply: FastifyReply,
  generation: Generation,
  output: OutputBuilder,
  response: (status: ResponseStatus, usage: Usage | null) => ReturnType<typeof responseObject>,
): FastifyReply {
  let sequence = 0;
  const frame = (event: ResponseEvent) => `event: ${event.type}\ndata: ${JSON.stringify({ ...event, sequence_number: sequence++ })}\n\n`;
  return streamChoices<ResponseEvent>(
    reply,
    generation,
    { delta: (_, event) => output.delta(event), finish: (_, reason) => output.finish(reason) },
    {
      open: () => [
        { type: 'response.created', response: response('in_progress', null) },
        { type: 'response.in_progress', response: response('in_progress', null) },
      ],
      close: (usage) => {
        const status = output.finishReason === 'length' ? 'incomplete' : 'completed';
        return [{ type: `response.${status}`, response: response(status, usage) }];
      },
      frame,
      error: (error: ApiError) => {
        const { message, param, code } = error.toBody().error;
        return frame({ type: 'error', code: code ?? error.type, message, param });
      },
    },
  );
}
