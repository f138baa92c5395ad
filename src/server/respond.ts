// The skeleton every generating route shares (chat completions, completions, responses): its n
// choices checked and started (admission, usage row, abort when the client goes away, rate-limit
// headers), then their merged events either collected into one answer or streamed as Server-Sent
// Events. A route supplies only what its format needs: how a choice's delta and finish become its
// objects or chunks. A choice cancelled while the client is still there means the server is
// draining: a collected answer becomes a 503, a stream ends with an error event.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenConstraint } from '../engine/constraint.js';
import type { GenerationEvent, PromptLogprobsList, SamplingOptions, Usage } from '../engine/types.js';
import type { ServerContext, ServedModel } from './context.js';
import { badRequest, shuttingDown, toApiError, type ApiError } from './errors.js';
import type { Generation } from './generation.js';
import { forChoice } from './sampling.js';
import { rateLimitHeaders } from './rate-limits.js';
import { abortOnDisconnect } from './routes/connection.js';
import { sendEventStream } from './sse.js';

export type DeltaEvent = Extract<GenerationEvent, { type: 'delta' }>;
/** How a choice ended, once it was not cancelled. */
export type Finish = 'stop' | 'length';

/**
 * `n` and vLLM's `best_of`: best_of would generate more samples than it returns, which this server
 * does not do, so any best_of other than n is refused by name.
 */
export function choiceCount(body: { n?: number | null; best_of?: number | null }): number {
  const n = body.n ?? 1;
  if (body.best_of !== null && body.best_of !== undefined && body.best_of !== n)
    throw badRequest(`'best_of' (${body.best_of}) other than n (${n}) is not supported: this server returns every sample it generates`, 'best_of');
  return n;
}

export interface ChoicePlan {
  /** Distinct prompts (token ids). */
  prompts: number[][];
  /** Samples per prompt: choice p·n + i is sample i of prompt p, as OpenAI orders them. */
  n: number;
  options: SamplingOptions;
  /** Per choice (length prompts × n), or none. Owned by the engine once started; disposed here on refusal. */
  constraints?: (TokenConstraint | null)[];
  /**
   * With `options.promptLogprobs`: whether only sample 0 of each prompt scores it (chat reports one
   * `prompt_logprobs` per response) instead of every choice (completions echo it per choice).
   */
  scoreFirstSampleOnly?: boolean;
}

/**
 * Admits and submits the request's choices, and ties the generation to the HTTP exchange: the client
 * going away aborts it, and the reply carries the key's rate-limit headers.
 */
export async function startChoices(
  ctx: ServerContext,
  model: ServedModel,
  request: FastifyRequest,
  reply: FastifyReply,
  endpoint: string,
  plan: ChoicePlan,
): Promise<Generation> {
  let generation: Generation;
  try {
    generation = await ctx.tracker.start(model, {
      keyId: request.keyId,
      limits: request.rateLimits,
      model: ctx.modelId,
      endpoint,
      prompts: plan.prompts,
      choices: plan.prompts.flatMap((_, p) =>
        Array.from({ length: plan.n }, (_, i) => ({
          prompt: p,
          options: plan.scoreFirstSampleOnly && i > 0 ? withoutPromptLogprobs(forChoice(plan.options, i)) : forChoice(plan.options, i),
          constraint: plan.constraints?.[p * plan.n + i] ?? undefined,
        })),
      ),
    });
  } catch (error) {
    for (const c of plan.constraints ?? []) c?.dispose(); // idempotent: the engine may have disposed some already
    throw error;
  }
  abortOnDisconnect(reply, generation);
  reply.headers(rateLimitHeaders(request.rateLimits, generation.rateWindow, Date.now()));
  return generation;
}

function withoutPromptLogprobs(options: SamplingOptions): SamplingOptions {
  if (options.promptLogprobs === undefined) return options;
  const { promptLogprobs: _, ...rest } = options;
  return rest;
}

/** What a route does with each choice's events. Each call returns the stream pieces it produces (none when collecting). */
export interface ChoiceHandler<P> {
  /** A scoring choice's prompt logprobs: they ride on its first event and are handed over before it. */
  promptLogprobs?(choice: number, list: PromptLogprobsList): Iterable<P>;
  delta(choice: number, event: DeltaEvent): Iterable<P>;
  finish(choice: number, reason: Finish): Iterable<P>;
}

/** Runs every choice to its end through `handler`; returns the final usage. */
export async function collectChoices(generation: Generation, handler: ChoiceHandler<never>): Promise<Usage> {
  for await (const piece of choicePieces(generation, handler)) void piece;
  return generation.usage();
}

async function* choicePieces<P>(generation: Generation, handler: ChoiceHandler<P>): AsyncGenerator<P> {
  for await (const { choice, event } of generation.events) {
    if (event.promptLogprobs && handler.promptLogprobs) yield* handler.promptLogprobs(choice, event.promptLogprobs);
    if (event.type === 'delta') yield* handler.delta(choice, event);
    else if (event.finishReason === 'cancelled') throw shuttingDown();
    else yield* handler.finish(choice, event.finishReason);
  }
}

export interface StreamFormat<P> {
  /** Pieces sent before any token (a role chunk per choice, a response.created event). */
  open(): Iterable<P>;
  /** Pieces sent once every choice has ended (a usage chunk, response.completed). */
  close(usage: Usage): Iterable<P>;
  /** One piece as SSE text. */
  frame(piece: P): string;
  /** A failure after the headers were sent, as SSE text (OpenAI's SDKs raise it as an APIError). */
  error(error: ApiError): string;
  /** The stream's last line, if the format has one (`data: [DONE]`). */
  end?: string;
}

/** Streams every choice through `handler` as Server-Sent Events framed by `format`. */
export function streamChoices<P>(reply: FastifyReply, generation: Generation, handler: ChoiceHandler<P>, format: StreamFormat<P>): FastifyReply {
  async function* events(): AsyncGenerator<string> {
    for (const piece of format.open()) yield format.frame(piece);
    try {
      for await (const piece of choicePieces(generation, handler)) yield format.frame(piece);
    } catch (error) {
      yield format.error(toApiError(error));
      return;
    }
    for (const piece of format.close(generation.usage())) yield format.frame(piece);
    if (format.end !== undefined) yield format.end;
  }
  return sendEventStream(reply, events());
}

/** Usage in the chat / completions shape. */
export function openAiUsage(u: Usage): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}
