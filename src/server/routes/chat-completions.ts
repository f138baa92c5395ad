// POST /v1/chat/completions: messages → chat template → token ids → n generations → one response, or a
// stream of chat.completion.chunk events. Qwen3's <think>…</think> is split into reasoning_content.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../engine/types.js';
import { ReasoningSplitter, reasoningStartForPrompt, type ReasoningStart } from '../../tokenizer/reasoning.js';
import type { ServedModel, ServerContext } from '../context.js';
import { badRequest, shuttingDown, toApiError } from '../errors.js';
import type { Generation } from '../generation.js';
import { chatLogprobs } from '../logprobs.js';
import { forChoice, toSamplingOptions } from '../sampling.js';
import {
  ChatCompletionChunkSchema,
  ChatCompletionRequestSchema,
  ChatCompletionSchema,
  type ChatChoice,
  type ChatChunkChoice,
  type ChatCompletionRequest,
} from '../schemas/chat.js';
import { errorResponses } from '../schemas/common.js';
import { SSE_DONE, sendEventStream, sseEvent } from '../sse.js';
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
      refuseUnsupportedChatFeatures(body);
      const messages: ChatMessage[] = body.messages.map((m) => ({
        role: m.role === 'developer' ? 'system' : m.role,
        content: typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join('\n'),
      }));
      const enableThinking = body.chat_template_kwargs?.enable_thinking ?? undefined;
      const prompt = render(model, messages, enableThinking);
      const promptTokens = model.tokenizer.encode(prompt, { addSpecialTokens: false });
      const options = toSamplingOptions(body, body.max_completion_tokens ?? body.max_tokens, {
        logprobs: body.logprobs ?? false,
        topLogprobs: body.top_logprobs ?? 0,
      });
      const n = body.n ?? 1;
      const generation = ctx.tracker.start(model, {
        keyId: request.keyId,
        model: ctx.modelId,
        endpoint: 'chat.completions',
        prompts: [promptTokens],
        choices: Array.from({ length: n }, (_, i) => ({ prompt: 0, options: forChoice(options, i) })),
      });
      abortOnDisconnect(reply, generation);
      const output: Output = { ctx, generation, n, reasoningStart: reasoningStartForPrompt(prompt), withLogprobs: options.logprobs === true };
      if (!body.stream) return collect(output);
      const serialize = reply.compileSerializationSchema(chunkSchemaRef) as (chunk: unknown) => string;
      return sendEventStream(reply, stream(output, serialize, body.stream_options?.include_usage ?? false));
    },
  );
}

/** Function calling, structured output and other modalities: only their neutral values pass. */
function refuseUnsupportedChatFeatures(body: ChatCompletionRequest): void {
  if (body.tools && body.tools.length > 0) throw badRequest('tools (function calling) are not supported by this server', 'tools');
  if (body.tool_choice != null && body.tool_choice !== 'none' && body.tool_choice !== 'auto')
    throw badRequest("tool_choice other than 'none' or 'auto' needs tools, which this server does not support", 'tool_choice');
  const format = body.response_format?.type;
  if (format !== undefined && format !== 'text')
    throw badRequest(`response_format '${format}' is not supported by this server (only 'text')`, 'response_format');
  if (body.modalities?.some((m) => m !== 'text'))
    throw badRequest("only the 'text' modality is supported", 'modalities');
}

/** The chat template's text; its own refusals (e.g. Qwen3's "No user query found in messages.") are 400s. */
function render(model: ServedModel, messages: ChatMessage[], enableThinking: boolean | undefined): string {
  try {
    return model.renderChat(messages, { enableThinking, addGenerationPrompt: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message.slice(0, 200) : 'unknown reason';
    throw badRequest(`the chat template cannot render these messages: ${reason}`, 'messages');
  }
}

interface Output {
  ctx: ServerContext;
  generation: Generation;
  n: number;
  reasoningStart: ReasoningStart;
  withLogprobs: boolean;
}

async function collect({ ctx, generation, n, reasoningStart, withLogprobs }: Output) {
  const choices: ChatChoice[] = [];
  const reasoning: string[] = [];
  const splitters: ReasoningSplitter[] = [];
  for (let i = 0; i < n; i++) {
    choices.push({ index: i, message: { role: 'assistant', content: '' }, finish_reason: null, logprobs: withLogprobs ? { content: [] } : null });
    reasoning.push('');
    splitters.push(new ReasoningSplitter(reasoningStart));
  }
  const append = (i: number, part: { reasoning: string; content: string }) => {
    reasoning[i] += part.reasoning;
    choices[i].message.content += part.content;
  };
  for await (const { choice: i, event } of generation.events) {
    if (event.type === 'delta') {
      append(i, splitters[i].push(event.text));
      if (event.logprobs) choices[i].logprobs?.content.push(...chatLogprobs(event.logprobs));
      continue;
    }
    // Cancelled with the client still there: the server is draining.
    if (event.finishReason === 'cancelled') throw shuttingDown();
    append(i, splitters[i].flush());
    choices[i].finish_reason = event.finishReason;
    if (reasoning[i]) choices[i].message.reasoning_content = reasoning[i];
  }
  const usage = generation.usage();
  return {
    id: `chatcmpl-${generation.id}`,
    object: 'chat.completion',
    created: generation.created,
    model: ctx.modelId,
    choices,
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens },
  };
}

async function* stream({ ctx, generation, n, reasoningStart }: Output, serialize: (chunk: unknown) => string, includeUsage: boolean) {
  const base = { id: `chatcmpl-${generation.id}`, object: 'chat.completion.chunk', created: generation.created, model: ctx.modelId };
  const chunk = (choice: ChatChunkChoice) => sseEvent(serialize({ ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) }));
  const splitters: ReasoningSplitter[] = [];
  // As OpenAI does: each choice opens with the role and empty content, before any token is generated.
  for (let i = 0; i < n; i++) {
    splitters.push(new ReasoningSplitter(reasoningStart));
    yield chunk({ index: i, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null });
  }
  const delta = (index: number, part: { reasoning: string; content: string }) => {
    const d: ChatChunkChoice['delta'] = {};
    if (part.reasoning) d.reasoning_content = part.reasoning;
    if (part.content) d.content = part.content;
    return d;
  };
  try {
    for await (const { choice: i, event } of generation.events) {
      if (event.type === 'delta') {
        const d = delta(i, splitters[i].push(event.text));
        const logprobs = event.logprobs ? { content: chatLogprobs(event.logprobs) } : null;
        if (d.content !== undefined || d.reasoning_content !== undefined || logprobs)
          yield chunk({ index: i, delta: d, finish_reason: null, logprobs });
        continue;
      }
      if (event.finishReason === 'cancelled') throw shuttingDown();
      const d = delta(i, splitters[i].flush());
      yield chunk({ index: i, delta: d, finish_reason: event.finishReason, logprobs: null });
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
