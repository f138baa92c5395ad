// A chat request made ready for the engine, checked all the way first: tool messages answer real
// calls, the template renders, tools / tool_choice / response_format are valid and their grammar
// compiled (in a worker, within the time limit). Only then can a generation be submitted, each with
// its own matcher. Also: turning a stream of text into content and typed tool calls.
import { randomBytes } from 'node:crypto';
import { GrammarCompileError, type GrammarPool, type CompiledGrammar } from '../grammar/index.js';
import { BannedTokens } from '../grammar/banned.js';
import { reasoningStartForPrompt, type ReasoningStart } from '../tokenizer/reasoning.js';
import { ToolCallParser } from '../tokenizer/tool-calls.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { TokenConstraint } from './constraint.js';
import { RequestError } from './engine.js';
import { checkToolMessages, planOutput, type OutputOptions, type OutputPlan } from './output-format.js';
import type { ChatEvent, ChatMessage, ChatTemplateOptions, GenerationEvent, ToolCall } from './types.js';

export interface PreparedChat {
  prompt: string;
  promptTokens: number[];
  reasoningStart: ReasoningStart;
  /** Tool calls are to be parsed out of the answer. */
  parseToolCalls: boolean;
  /** A fresh constraint for one generation (null: none needed); the engine disposes it. */
  constraint(): Promise<TokenConstraint | null>;
}

/** What preparing needs of a model. */
export interface ChatContext {
  tokenizer: Tokenizer;
  logitsWidth: number;
  grammars(): GrammarPool;
}

export async function prepareChat(
  ctx: ChatContext,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions & OutputOptions,
): Promise<PreparedChat> {
  checkToolMessages(messages);
  let prompt: string;
  try {
    prompt = ctx.tokenizer.encodeChat(messages, { enableThinking: options.enableThinking, addGenerationPrompt: options.addGenerationPrompt, tools: options.tools }).prompt;
  } catch (error) {
    // The template's own refusals (e.g. Qwen3's "No user query found in messages.").
    const reason = error instanceof Error ? error.message.slice(0, 200) : 'unknown reason';
    throw new RequestError(`the chat template cannot render these messages: ${reason}`, 'messages');
  }
  const reasoningStart = reasoningStartForPrompt(prompt);
  const plan = planOutput(options, reasoningStart);
  const constraint = await constraintFactory(ctx, plan);
  return {
    prompt,
    promptTokens: ctx.tokenizer.encode(prompt, { addSpecialTokens: false }),
    reasoningStart,
    parseToolCalls: plan.parseToolCalls,
    constraint,
  };
}

/** A raw completion's constraint (response_format only: no template, no reasoning block). */
export async function prepareCompletion(ctx: ChatContext, options: Pick<OutputOptions, 'responseFormat'>): Promise<() => Promise<TokenConstraint | null>> {
  return constraintFactory(ctx, planOutput({ responseFormat: options.responseFormat }, 'content'));
}

async function constraintFactory(ctx: ChatContext, plan: OutputPlan): Promise<() => Promise<TokenConstraint | null>> {
  if (plan.format !== null) {
    const grammar = await compile(ctx.grammars(), plan);
    return () => ctx.grammars().constraint(grammar);
  }
  if (plan.banned !== null) {
    const id = ctx.tokenizer.tokenToId(plan.banned);
    if (id !== undefined) return async () => new BannedTokens(ctx.logitsWidth, ctx.tokenizer.vocabSize, [id]);
  }
  return async () => null;
}

/** Compiles the plan's format; a failure becomes a 400 naming the schema's request field. */
async function compile(pool: GrammarPool, plan: OutputPlan): Promise<CompiledGrammar> {
  try {
    return await pool.compile(plan.format!);
  } catch (error) {
    if (!(error instanceof GrammarCompileError)) throw error;
    const names = plan.sources.map((s) => s.what).join(', ');
    const param = plan.sources[0]?.param ?? 'tools';
    if (error.reason === 'timeout')
      throw new RequestError(`compiling the grammar of ${names} took longer than the limit (${pool.compileTimeoutMs} ms); simplify the schema`, param);
    // Find the schema at fault: each one compiled on its own (only on this error path).
    for (const s of plan.sources) {
      try {
        await pool.compile({ type: 'json_schema', json_schema: s.schema });
      } catch (e) {
        if (e instanceof GrammarCompileError) throw new RequestError(`${s.what} cannot be enforced: ${e.reason === 'timeout' ? 'its grammar takes too long to compile' : e.message}`, s.param);
        throw e;
      }
    }
    throw new RequestError(`the output format of ${names} cannot be enforced: ${error.message}`, param);
  }
}

/** A new tool call id, as OpenAI spells them. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

/**
 * model.chat's event stream: content deltas without tool-call text, each complete call as one
 * `tool_call` event, and finish reason 'tool_calls' when the answer ended with calls.
 */
export async function* chatEvents(events: AsyncIterable<GenerationEvent>, parseToolCalls: boolean): AsyncGenerator<ChatEvent> {
  if (!parseToolCalls) {
    yield* events;
    return;
  }
  const parser = new ToolCallParser();
  const calls: ToolCall[] = [];
  const emitted = new Set<number>();
  /** Applies parsed parts; returns the content text and the calls completed by them. */
  const apply = (parts: ReturnType<ToolCallParser['push']>) => {
    let text = '';
    const done: ChatEvent[] = [];
    for (const p of parts) {
      if (p.type === 'text') text += p.text;
      else if (p.type === 'call') calls[p.index] = { id: toolCallId(), type: 'function', function: { name: p.name, arguments: '' } };
      else if (p.type === 'arguments') calls[p.index].function.arguments += p.text;
      else {
        emitted.add(p.index);
        done.push({ type: 'tool_call', index: p.index, call: calls[p.index] });
      }
    }
    return { text, done };
  };
  for await (const event of events) {
    if (event.type === 'delta') {
      const { text, done } = apply(parser.push(event.text));
      yield { ...event, text };
      yield* done;
      continue;
    }
    const tail = apply(parser.flush());
    if (tail.text) yield { type: 'delta', text: tail.text, tokenIds: [] };
    yield* tail.done;
    // A call cut short (max_tokens) is reported with the arguments it has.
    for (let i = 0; i < calls.length; i++) if (!emitted.has(i)) yield { type: 'tool_call', index: i, call: calls[i] };
    yield { ...event, finishReason: calls.length > 0 && event.finishReason === 'stop' ? 'tool_calls' : event.finishReason };
  }
}
