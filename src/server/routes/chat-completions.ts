// POST /v1/chat/completions: messages → chat template → token ids → n generations → one response, or a
// stream of chat.completion.chunk events. Qwen3's <think>…</think> is split into reasoning_content;
// with tools, <tool_call> blocks become message.tool_calls (streamed as delta.tool_calls) and never
// reach content. tool_choice required / named and response_format are enforced by a grammar.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenConstraint } from '../../engine/constraint.js';
import type { ChatMessage, ResponseFormat, ToolCall } from '../../engine/types.js';
import { toolCallId } from '../../engine/chat.js';
import { ReasoningSplitter, type ReasoningStart } from '../../tokenizer/reasoning.js';
import { ToolCallParser, type ToolCallPart } from '../../tokenizer/tool-calls.js';
import type { ServerContext } from '../context.js';
import { badRequest, shuttingDown, toApiError } from '../errors.js';
import type { Generation } from '../generation.js';
import { chatLogprobs } from '../logprobs.js';
import { checkPromptLogprobsRequest, vllmPromptLogprobs, type VllmPromptLogprobs } from '../prompt-logprobs.js';
import { forChoice, toSamplingOptions } from '../sampling.js';
import {
  ChatCompletionChunkSchema,
  ChatCompletionRequestSchema,
  ChatCompletionSchema,
  type ChatChoice,
  type ChatChunkChoice,
  type ChatCompletionRequest,
  type RequestMessage,
  type ToolCallDelta,
} from '../schemas/chat.js';
import { errorResponses } from '../schemas/common.js';
import { SSE_DONE, sendEventStream, sseEvent } from '../sse.js';
import { rateLimitHeaders } from '../rate-limits.js';
import { abortOnDisconnect } from './connection.js';

const chunkSchemaRef = { $ref: `${ChatCompletionChunkSchema.$id}#` };

export async function chatCompletionsRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.addSchema(ChatCompletionChunkSchema);
  app.post(
    '/chat/completions',
    { schema: { body: ChatCompletionRequestSchema, response: { 200: ChatCompletionSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: ChatCompletionRequest }>, reply: FastifyReply) => {
      const body = request.body;
      const model = ctx.modelFor(body.model);
      if (body.top_logprobs && !body.logprobs) throw badRequest("'top_logprobs' requires 'logprobs' to be true", 'top_logprobs');
      if (body.modalities?.some((m) => m !== 'text')) throw badRequest("only the 'text' modality is supported", 'modalities');
      checkPromptLogprobsRequest(body);
      // Checked, rendered and its grammar compiled before anything is queued.
      const prepared = await model.prepareChat(toChatMessages(body.messages), {
        enableThinking: body.chat_template_kwargs?.enable_thinking ?? undefined,
        addGenerationPrompt: true,
        tools: body.tools ?? undefined,
        toolChoice: body.tool_choice ?? undefined,
        parallelToolCalls: body.parallel_tool_calls ?? undefined,
        responseFormat: toResponseFormat(body.response_format),
      });
      const options = toSamplingOptions(body, body.max_completion_tokens ?? body.max_tokens, {
        logprobs: body.logprobs ?? false,
        topLogprobs: body.top_logprobs ?? 0,
      });
      const n = body.n ?? 1;
      const promptLogprobs = body.prompt_logprobs ?? null;
      const constraints = await Promise.all(Array.from({ length: n }, () => prepared.constraint()));
      let generation: Generation;
      try {
        generation = await ctx.tracker.start(model, {
          keyId: request.keyId,
          limits: request.rateLimits,
          model: ctx.modelId,
          endpoint: 'chat.completions',
          prompts: [prepared.promptTokens],
          choices: constraints.map((constraint, i) => ({
            prompt: 0,
            // The choices share the prompt: the first one scores it.
            options: i === 0 && promptLogprobs !== null ? { ...options, promptLogprobs } : forChoice(options, i),
            constraint: constraint ?? undefined,
          })),
        });
      } catch (error) {
        disposeAll(constraints); // idempotent: the engine may have disposed some already
        throw error;
      }
      abortOnDisconnect(reply, generation);
      reply.headers(rateLimitHeaders(request.rateLimits, generation.rateWindow, Date.now()));
      const output: Output = {
        ctx,
        generation,
        n,
        reasoningStart: prepared.reasoningStart,
        withLogprobs: options.logprobs === true,
        parseToolCalls: prepared.parseToolCalls,
        promptLogprobs,
      };
      if (!body.stream) return collect(output);
      const serialize = reply.compileSerializationSchema(chunkSchemaRef) as (chunk: unknown) => string;
      return sendEventStream(reply, stream(output, serialize, body.stream_options?.include_usage ?? false));
    },
  );
}

function disposeAll(constraints: (TokenConstraint | null)[]): void {
  for (const c of constraints) c?.dispose();
}

/** response_format in the engine's terms: json_schema needs its json_schema object. */
function toResponseFormat(format: ChatCompletionRequest['response_format']): ResponseFormat | undefined {
  if (format === null || format === undefined) return undefined;
  if (format.type !== 'json_schema') return { type: format.type };
  if (format.json_schema === undefined) throw badRequest("response_format of type 'json_schema' needs a json_schema object", 'response_format.json_schema');
  return { type: 'json_schema', json_schema: format.json_schema };
}

/** The request's messages in the engine's terms; what the schema cannot say is checked here. */
function toChatMessages(messages: RequestMessage[]): ChatMessage[] {
  return messages.map((m, i) => {
    const content = m.content === undefined || m.content === null ? null : typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join('\n');
    const calls = m.tool_calls ?? [];
    if (calls.length > 0 && m.role !== 'assistant') throw badRequest(`messages[${i}]: only assistant messages have tool_calls`, `messages[${i}].tool_calls`);
    if (m.tool_call_id !== undefined && m.role !== 'tool') throw badRequest(`messages[${i}]: only tool messages have a tool_call_id`, `messages[${i}].tool_call_id`);
    if (m.role === 'assistant') {
      if (content === null && calls.length === 0) throw badRequest(`messages[${i}]: an assistant message needs content or tool_calls`, `messages[${i}].content`);
      // Only keys with values: the template tests `reasoning_content is defined`.
      return {
        role: 'assistant',
        content,
        ...(typeof m.reasoning_content === 'string' ? { reasoning_content: m.reasoning_content } : {}),
        ...(calls.length > 0 ? { tool_calls: calls } : {}),
      };
    }
    if (content === null) throw badRequest(`messages[${i}]: a ${m.role} message needs content`, `messages[${i}].content`);
    if (m.role === 'tool') {
      if (m.tool_call_id === undefined) throw badRequest(`messages[${i}]: a tool message needs the tool_call_id it answers`, `messages[${i}].tool_call_id`);
      return { role: 'tool', content, tool_call_id: m.tool_call_id };
    }
    return { role: m.role === 'developer' ? 'system' : m.role, content };
  });
}

interface Output {
  ctx: ServerContext;
  generation: Generation;
  n: number;
  reasoningStart: ReasoningStart;
  withLogprobs: boolean;
  parseToolCalls: boolean;
  /** prompt_logprobs: alternatives per token (null: not asked). */
  promptLogprobs: number | null;
}

/** One choice's text path: reasoning split off, then (with tools) calls parsed out of the content. */
class ChoiceText {
  readonly #reasoning: ReasoningSplitter;
  readonly #calls: ToolCallParser | null;

  constructor(start: ReasoningStart, parseToolCalls: boolean) {
    this.#reasoning = new ReasoningSplitter(start);
    this.#calls = parseToolCalls ? new ToolCallParser() : null;
  }

  get numCalls(): number {
    return this.#calls?.numCalls ?? 0;
  }

  push(text: string): { reasoning: string; parts: ToolCallPart[] } {
    return this.#split(this.#reasoning.push(text), false);
  }

  flush(): { reasoning: string; parts: ToolCallPart[] } {
    return this.#split(this.#reasoning.flush(), true);
  }

  #split(part: { reasoning: string; content: string }, final: boolean): { reasoning: string; parts: ToolCallPart[] } {
    if (this.#calls === null) return { reasoning: part.reasoning, parts: part.content ? [{ type: 'text', text: part.content }] : [] };
    const parts = this.#calls.push(part.content);
    if (final) parts.push(...this.#calls.flush());
    return { reasoning: part.reasoning, parts };
  }
}

/** OpenAI's finish reason: 'tool_calls' when the answer ended normally after calls. */
function finishReason(reason: 'stop' | 'length', numCalls: number): 'stop' | 'length' | 'tool_calls' {
  return reason === 'stop' && numCalls > 0 ? 'tool_calls' : reason;
}

async function collect({ ctx, generation, n, reasoningStart, withLogprobs, parseToolCalls, promptLogprobs }: Output) {
  let scoredPrompt: VllmPromptLogprobs | null = null;
  const choices: ChatChoice[] = [];
  const reasoning: string[] = [];
  const texts: ChoiceText[] = [];
  const calls: ToolCall[][] = [];
  for (let i = 0; i < n; i++) {
    choices.push({ index: i, message: { role: 'assistant', content: '' }, finish_reason: null, logprobs: withLogprobs ? { content: [] } : null });
    reasoning.push('');
    texts.push(new ChoiceText(reasoningStart, parseToolCalls));
    calls.push([]);
  }
  const append = (i: number, out: { reasoning: string; parts: ToolCallPart[] }) => {
    reasoning[i] += out.reasoning;
    for (const p of out.parts) {
      if (p.type === 'text') choices[i].message.content += p.text;
      else if (p.type === 'call') calls[i][p.index] = { id: toolCallId(), type: 'function', function: { name: p.name, arguments: '' } };
      else if (p.type === 'arguments') calls[i][p.index].function.arguments += p.text;
    }
  };
  for await (const { choice: i, event } of generation.events) {
    if (event.promptLogprobs && promptLogprobs !== null) scoredPrompt = vllmPromptLogprobs(event.promptLogprobs, promptLogprobs);
    if (event.type === 'delta') {
      append(i, texts[i].push(event.text));
      if (event.logprobs) choices[i].logprobs?.content.push(...chatLogprobs(event.logprobs));
      continue;
    }
    // Cancelled with the client still there: the server is draining.
    if (event.finishReason === 'cancelled') throw shuttingDown();
    append(i, texts[i].flush());
    choices[i].finish_reason = finishReason(event.finishReason, calls[i].length);
    if (reasoning[i]) choices[i].message.reasoning_content = reasoning[i];
    if (calls[i].length > 0) {
      choices[i].message.tool_calls = calls[i];
      // As OpenAI answers a pure tool call: no content at all.
      if (choices[i].message.content === '') choices[i].message.content = null;
    }
  }
  const usage = generation.usage();
  return {
    id: `chatcmpl-${generation.id}`,
    object: 'chat.completion',
    created: generation.created,
    model: ctx.modelId,
    choices,
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens },
    ...(promptLogprobs !== null ? { prompt_logprobs: scoredPrompt } : {}),
  };
}

async function* stream({ ctx, generation, n, reasoningStart, parseToolCalls }: Output, serialize: (chunk: unknown) => string, includeUsage: boolean) {
  const base = { id: `chatcmpl-${generation.id}`, object: 'chat.completion.chunk', created: generation.created, model: ctx.modelId };
  const chunk = (choice: ChatChunkChoice) => sseEvent(serialize({ ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) }));
  const texts: ChoiceText[] = [];
  // As OpenAI does: each choice opens with the role and empty content, before any token is generated.
  for (let i = 0; i < n; i++) {
    texts.push(new ChoiceText(reasoningStart, parseToolCalls));
    yield chunk({ index: i, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null });
  }
  /** The chunks of one step's text: reasoning and content together, then one per tool-call fragment. */
  function* chunks(index: number, out: { reasoning: string; parts: ToolCallPart[] }, logprobs: ChatChunkChoice['logprobs'], finish: ChatChunkChoice['finish_reason']) {
    const d: ChatChunkChoice['delta'] = {};
    if (out.reasoning) d.reasoning_content = out.reasoning;
    const content = out.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
    if (content) d.content = content;
    if (d.content !== undefined || d.reasoning_content !== undefined || logprobs) yield chunk({ index, delta: d, finish_reason: null, logprobs });
    for (const p of out.parts) {
      let call: ToolCallDelta | null = null;
      if (p.type === 'call') call = { index: p.index, id: toolCallId(), type: 'function', function: { name: p.name, arguments: '' } };
      else if (p.type === 'arguments') call = { index: p.index, function: { arguments: p.text } };
      if (call) yield chunk({ index, delta: { tool_calls: [call] }, finish_reason: null, logprobs: null });
    }
    if (finish) yield chunk({ index, delta: {}, finish_reason: finish, logprobs: null });
  }
  try {
    for await (const { choice: i, event } of generation.events) {
      if (event.type === 'delta') {
        const logprobs = event.logprobs ? { content: chatLogprobs(event.logprobs) } : null;
        yield* chunks(i, texts[i].push(event.text), logprobs, null);
        continue;
      }
      if (event.finishReason === 'cancelled') throw shuttingDown();
      const tail = texts[i].flush();
      yield* chunks(i, tail, null, finishReason(event.finishReason, texts[i].numCalls));
    }
  } catch (error) {
    // Headers are sent: the error travels as an event, which OpenAI's SDKs raise as an APIError.
    yield sseEvent(JSON.stringify(toApiError(error).toBody()));
    return;
  }
  if (includeUsage) {
    const u = generation.usage();
    const usage = { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
    yield sseEvent(serialize({ ...base, choices: [], usage }));
  }
  yield SSE_DONE;
}
