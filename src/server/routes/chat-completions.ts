// POST /v1/chat/completions: messages → chat template → token ids → n generations → one response, or a
// stream of chat.completion.chunk events. Qwen3's <think>…</think> is split into reasoning_content
// (also sent as `reasoning`, vLLM's newer name; either is accepted back); with tools, <tool_call> blocks become message.tool_calls (streamed as delta.tool_calls) and never
// reach content. tool_choice required / named and response_format are enforced by a grammar.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage, ResponseFormat, ToolCall } from '../../engine/types.js';
import { toolCallId } from '../../engine/chat.js';
import type { ReasoningStart } from '../../tokenizer/reasoning.js';
import type { ToolCallPart } from '../../tokenizer/tool-calls.js';
import { ChoiceText } from '../choice-text.js';
import type { ServerContext } from '../context.js';
import { badRequest } from '../errors.js';
import type { Generation } from '../generation.js';
import { chatLogprobs } from '../logprobs.js';
import { checkPromptLogprobsRequest, vllmPromptLogprobs, type VllmPromptLogprobs } from '../prompt-logprobs.js';
import { toSamplingOptions } from '../sampling.js';
import { choiceCount, collectChoices, openAiUsage, startChoices, streamChoices } from '../respond.js';
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
import { SSE_DONE, sseEvent } from '../sse.js';

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
      const n = choiceCount(body);
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
      const promptLogprobs = body.prompt_logprobs ?? null;
      if (promptLogprobs !== null) options.promptLogprobs = promptLogprobs;
      const constraints = await Promise.all(Array.from({ length: n }, () => prepared.constraint()));
      // The choices share the prompt: the first one scores it.
      const generation = await startChoices(ctx, model, request, reply, 'chat.completions', {
        prompts: [prepared.promptTokens],
        n,
        options,
        constraints,
        scoreFirstSampleOnly: true,
      });
      const last = body.messages[body.messages.length - 1];
      const output: Output = {
        ctx,
        generation,
        n,
        echo: body.echo && last.role === 'assistant' ? messageText(last.content) ?? '' : '',
        reasoningStart: prepared.reasoningStart,
        withLogprobs: options.logprobs === true,
        parseToolCalls: prepared.parseToolCalls,
        promptLogprobs,
      };
      if (!body.stream) return collect(output);
      const serialize = reply.compileSerializationSchema(chunkSchemaRef) as (chunk: unknown) => string;
      return stream(reply, output, serialize, body.stream_options?.include_usage ?? false);
    },
  );
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
    const content = messageText(m.content);
    const calls = m.tool_calls ?? [];
    if (calls.length > 0 && m.role !== 'assistant') throw badRequest(`messages[${i}]: only assistant messages have tool_calls`, `messages[${i}].tool_calls`);
    if (m.tool_call_id !== undefined && m.role !== 'tool') throw badRequest(`messages[${i}]: only tool messages have a tool_call_id`, `messages[${i}].tool_call_id`);
    if (m.role === 'assistant') {
      const reasoning = m.reasoning_content ?? m.reasoning;
      if (content === null && calls.length === 0) throw badRequest(`messages[${i}]: an assistant message needs content or tool_calls`, `messages[${i}].content`);
      // Only keys with values: the template tests `reasoning_content is defined`.
      return {
        role: 'assistant',
        content,
        ...(typeof reasoning === 'string' ? { reasoning_content: reasoning } : {}),
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

/** A message's content as text: its text parts joined by newlines. */
function messageText(content: RequestMessage['content']): string | null {
  if (content === undefined || content === null) return null;
  return typeof content === 'string' ? content : content.map((part) => part.text).join('\n');
}

interface Output {
  ctx: ServerContext;
  generation: Generation;
  n: number;
  /** Text every choice's content starts with (vLLM's echo of a final assistant message), or ''. */
  echo: string;
  reasoningStart: ReasoningStart;
  withLogprobs: boolean;
  parseToolCalls: boolean;
  /** prompt_logprobs: alternatives per token (null: not asked). */
  promptLogprobs: number | null;
}

/** OpenAI's finish reason: 'tool_calls' when the answer ended normally after calls. */
function finishReason(reason: 'stop' | 'length', numCalls: number): 'stop' | 'length' | 'tool_calls' {
  return reason === 'stop' && numCalls > 0 ? 'tool_calls' : reason;
}

async function collect({ ctx, generation, n, echo, reasoningStart, withLogprobs, parseToolCalls, promptLogprobs }: Output) {
  let scoredPrompt: VllmPromptLogprobs | null = null;
  const choices: ChatChoice[] = [];
  const reasoning: string[] = [];
  const texts: ChoiceText[] = [];
  const calls: ToolCall[][] = [];
  for (let i = 0; i < n; i++) {
    choices.push({ index: i, message: { role: 'assistant', content: echo }, finish_reason: null, logprobs: withLogprobs ? { content: [] } : null });
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
  const usage = await collectChoices(generation, {
    promptLogprobs(_, list) {
      if (promptLogprobs !== null) scoredPrompt = vllmPromptLogprobs(list, promptLogprobs);
      return [];
    },
    delta(i, event) {
      append(i, texts[i].push(event.text));
      if (event.logprobs) choices[i].logprobs?.content.push(...chatLogprobs(event.logprobs));
      return [];
    },
    finish(i, reason) {
      append(i, texts[i].flush());
      choices[i].finish_reason = finishReason(reason, calls[i].length);
      if (reasoning[i]) {
        choices[i].message.reasoning_content = reasoning[i];
        choices[i].message.reasoning = reasoning[i];
      }
      if (calls[i].length > 0) {
        choices[i].message.tool_calls = calls[i];
        // As OpenAI answers a pure tool call: no content at all.
        if (choices[i].message.content === '') choices[i].message.content = null;
      }
      return [];
    },
  });
  return {
    id: `chatcmpl-${generation.id}`,
    object: 'chat.completion',
    created: generation.created,
    model: ctx.modelId,
    choices,
    usage: openAiUsage(usage),
    ...(promptLogprobs !== null ? { prompt_logprobs: scoredPrompt } : {}),
  };
}

function stream(
  reply: FastifyReply,
  { ctx, generation, n, echo, reasoningStart, parseToolCalls }: Output,
  serialize: (chunk: unknown) => string,
  includeUsage: boolean,
): FastifyReply {
  const base = { id: `chatcmpl-${generation.id}`, object: 'chat.completion.chunk', created: generation.created, model: ctx.modelId };
  const chunk = (choice: ChatChunkChoice) => ({ ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) });
  const texts = Array.from({ length: n }, () => new ChoiceText(reasoningStart, parseToolCalls));
  /** The chunks of one step's text: reasoning and content together, then one per tool-call fragment. */
  function* chunks(index: number, out: { reasoning: string; parts: ToolCallPart[] }, logprobs: ChatChunkChoice['logprobs'], finish: ChatChunkChoice['finish_reason']) {
    const d: ChatChunkChoice['delta'] = {};
    if (out.reasoning) {
      d.reasoning_content = out.reasoning;
      d.reasoning = out.reasoning;
    }
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
  return streamChoices<object>(
    reply,
    generation,
    {
      delta: (i, event) => chunks(i, texts[i].push(event.text), event.logprobs ? { content: chatLogprobs(event.logprobs) } : null, null),
      finish: (i, reason) => {
        const tail = texts[i].flush();
        return chunks(i, tail, null, finishReason(reason, texts[i].numCalls));
      },
    },
    {
      // As OpenAI does: each choice opens with the role and empty content, before any token is generated.
      open: () =>
        texts.flatMap((_, index) => [
          chunk({ index, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }),
          ...(echo ? [chunk({ index, delta: { content: echo }, finish_reason: null, logprobs: null })] : []),
        ]),
      close: (usage) => (includeUsage ? [{ ...base, choices: [], usage: openAiUsage(usage) }] : []),
      frame: (c) => sseEvent(serialize(c)),
      error: (error) => sseEvent(JSON.stringify(error.toBody())),
      end: SSE_DONE,
    },
  );
}
