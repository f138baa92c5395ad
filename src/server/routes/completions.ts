// POST /v1/completions: raw prompts (text or token ids, one or a batch) → n generations each, with
// `echo` (the prompt text before the completion) and `logprobs` (top alternatives per token; with echo,
// the prompt's tokens too, how evaluation harnesses score loglikelihoods, often with max_tokens 0), and
// vLLM's `prompt_logprobs`.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, ServedModel } from '../context.js';
import { badRequest } from '../errors.js';
import type { Generation } from '../generation.js';
import { CompletionLogprobsBuilder } from '../logprobs.js';
import { checkPromptLogprobsRequest, vllmPromptLogprobs } from '../prompt-logprobs.js';
import type { PromptLogprobsList } from '../../engine/types.js';
import { toSamplingOptions } from '../sampling.js';
import { choiceCount, collectChoices, openAiUsage, startChoices, streamChoices } from '../respond.js';
import { errorResponses } from '../schemas/common.js';
import {
  CompletionChunkSchema,
  CompletionRequestSchema,
  CompletionSchema,
  type CompletionChoice,
  type CompletionLogprobs,
  type CompletionRequest,
} from '../schemas/completions.js';
import { SSE_DONE, sseEvent } from '../sse.js';

/** OpenAI's default for this endpoint (chat completions default to the rest of the context). */
const DEFAULT_MAX_TOKENS = 16;

/** Prompts × n of one request at most: each choice is a sequence in the engine. */
const MAX_CHOICES = 64;

const chunkSchemaRef = { $ref: `${CompletionChunkSchema.$id}#` };

export async function completionsRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.addSchema(CompletionChunkSchema);
  app.post(
    '/completions',
    { schema: { body: CompletionRequestSchema, response: { 200: CompletionSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: CompletionRequest }>, reply: FastifyReply) => {
      const body = request.body;
      const model = ctx.modelFor(body.model);
      const echo = body.echo ?? false;
      const logprobs = body.logprobs ?? null;
      checkPromptLogprobsRequest(body);
      const echoLogprobs = echo ? logprobs : null;
      const vllmLogprobs = body.prompt_logprobs ?? null;
      const prompts = toPromptTokens(model, body.prompt);
      if (prompts.some((p) => p.length === 0)) throw badRequest('the prompt is empty', 'prompt');
      const n = choiceCount(body);
      if (prompts.length * n > MAX_CHOICES)
        throw badRequest(`a request may ask for ${MAX_CHOICES} choices at most (prompts × n = ${prompts.length * n})`, 'n');
      const options = toSamplingOptions(body, body.max_tokens ?? DEFAULT_MAX_TOKENS, {
        logprobs: logprobs !== null,
        topLogprobs: logprobs ?? 0,
      });
      // The engine computes the larger count once; each field keeps its own.
      if (echoLogprobs !== null || vllmLogprobs !== null) options.promptLogprobs = Math.max(echoLogprobs ?? 0, vllmLogprobs ?? 0);
      const prefixes = prompts.map((tokens, i) => (echo ? echoText(model, body.prompt, tokens, i) : ''));
      const generation = await startChoices(ctx, model, request, reply, 'completions', { prompts, n, options });
      const output: Output = {
        ctx,
        generation,
        prefixOf: (choice) => prefixes[Math.floor(choice / n)],
        numChoices: prompts.length * n,
        withLogprobs: logprobs !== null,
        echoLogprobs:
          echoLogprobs === null
            ? null
            : (builder, choice, list) => builder.appendPrompt(prompts[Math.floor(choice / n)], list, (id) => tokenText(model, id), echoLogprobs),
        vllmLogprobs,
      };
      if (!body.stream) return collect(output);
      const serialize = reply.compileSerializationSchema(chunkSchemaRef) as (chunk: unknown) => string;
      return stream(reply, output, serialize, body.stream_options?.include_usage ?? false);
    },
  );
}

function toPromptTokens(model: ServedModel, prompt: CompletionRequest['prompt']): number[][] {
  if (typeof prompt === 'string') return [model.tokenizer.encode(prompt)];
  if (typeof prompt[0] === 'number') return [prompt as number[]];
  if (typeof prompt[0] === 'string') return (prompt as string[]).map((p) => model.tokenizer.encode(p));
  return prompt as number[][];
}

/** The prompt text to echo: as given when it was text, else the token ids decoded. */
function echoText(model: ServedModel, prompt: CompletionRequest['prompt'], tokens: number[], index: number): string {
  if (typeof prompt === 'string') return prompt;
  if (typeof prompt[index] === 'string') return prompt[index] as string;
  try {
    return model.tokenizer.decode(tokens);
  } catch {
    throw badRequest('the prompt holds token ids outside the vocabulary', 'prompt');
  }
}

/** A token's text for an echoed prompt's logprobs (an id past the tokenizer, embedding padding: empty). */
function tokenText(model: ServedModel, id: number): string {
  try {
    return model.tokenizer.tokenText(id);
  } catch {
    return '';
  }
}

interface Output {
  ctx: ServerContext;
  generation: Generation;
  prefixOf: (choice: number) => string;
  numChoices: number;
  withLogprobs: boolean;
  /** Echo with logprobs: the echoed prompt's part of a choice's logprobs, from its prompt logprobs. */
  echoLogprobs: ((builder: CompletionLogprobsBuilder, choice: number, list: PromptLogprobsList) => CompletionLogprobs) | null;
  /** prompt_logprobs: alternatives per token (null: not asked). */
  vllmLogprobs: number | null;
}

async function collect({ ctx, generation, prefixOf, numChoices, withLogprobs, echoLogprobs, vllmLogprobs }: Output) {
  const choices: CompletionChoice[] = [];
  const logprobs: CompletionLogprobsBuilder[] = [];
  for (let i = 0; i < numChoices; i++) {
    const builder = new CompletionLogprobsBuilder();
    logprobs.push(builder);
    choices.push({ index: i, text: prefixOf(i), finish_reason: null, logprobs: withLogprobs ? builder.result : null });
    if (vllmLogprobs !== null) choices[i].prompt_logprobs = null;
  }
  const usage = await collectChoices(generation, {
    // A choice's first event carries its prompt logprobs, ahead of its own tokens.
    promptLogprobs(i, list) {
      if (echoLogprobs) echoLogprobs(logprobs[i], i, list);
      if (vllmLogprobs !== null) choices[i].prompt_logprobs = vllmPromptLogprobs(list, vllmLogprobs);
      return [];
    },
    delta(i, event) {
      if (event.logprobs) logprobs[i].append(event.logprobs, choices[i].text.length);
      choices[i].text += event.text;
      return [];
    },
    finish(i, reason) {
      choices[i].finish_reason = reason;
      return [];
    },
  });
  return {
    id: `cmpl-${generation.id}`,
    object: 'text_completion',
    created: generation.created,
    model: ctx.modelId,
    choices,
    usage: openAiUsage(usage),
  };
}

function stream(
  reply: FastifyReply,
  { ctx, generation, prefixOf, numChoices, echoLogprobs }: Output,
  serialize: (chunk: unknown) => string,
  includeUsage: boolean,
): FastifyReply {
  const base = { id: `cmpl-${generation.id}`, object: 'text_completion', created: generation.created, model: ctx.modelId };
  const chunk = (choice: CompletionChoice) => ({ ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) });
  const offsets = Array.from({ length: numChoices }, (_, i) => prefixOf(i).length);
  const logprobs = Array.from({ length: numChoices }, () => new CompletionLogprobsBuilder());
  return streamChoices<object>(
    reply,
    generation,
    {
      // With logprobs, the echo waits for the prompt's logprobs (the choice's first event).
      promptLogprobs: (i, list) =>
        echoLogprobs ? [chunk({ index: i, text: prefixOf(i), finish_reason: null, logprobs: echoLogprobs(logprobs[i], i, list) })] : [],
      delta(i, event) {
        const lp = event.logprobs ? logprobs[i].append(event.logprobs, offsets[i]) : null;
        offsets[i] += event.text.length;
        return [chunk({ index: i, text: event.text, finish_reason: null, logprobs: lp })];
      },
      finish: (i, reason) => [chunk({ index: i, text: '', finish_reason: reason, logprobs: null })],
    },
    {
      open: () => offsets.flatMap((_, i) => (prefixOf(i) && !echoLogprobs ? [chunk({ index: i, text: prefixOf(i), finish_reason: null, logprobs: null })] : [])),
      close: (usage) => (includeUsage ? [{ ...base, choices: [], usage: openAiUsage(usage) }] : []),
      frame: (c) => sseEvent(serialize(c)),
      error: (error) => sseEvent(JSON.stringify(error.toBody())),
      end: SSE_DONE,
    },
  );
}
