// POST /v1/embeddings: one embedding per input (texts or token ids) from an embedding model (served
// with --task embed, or detected from a sentence-transformers checkpoint). Metered as prompt tokens.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { badRequest } from '../errors.js';
import { errorResponses } from '../schemas/common.js';
import { EmbeddingRequestSchema, EmbeddingResponseSchema, type EmbeddingRequest } from '../schemas/embeddings.js';

export async function embeddingsRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.post(
    '/embeddings',
    { schema: { body: EmbeddingRequestSchema, response: { 200: EmbeddingResponseSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: EmbeddingRequest }>) => {
      const body = request.body;
      const model = ctx.modelFor(body.model);
      if (model.task !== 'embed')
        throw badRequest(`${ctx.modelId} is a generative model; embeddings need an embedding model (paralon serve --task embed)`, 'model');
      const startedAt = Date.now();
      const { embeddings, promptTokens } = await model.embed(inputsOf(body.input), { dimensions: body.dimensions ?? undefined });
      ctx.usage.record({
        keyId: request.keyId,
        model: ctx.modelId,
        endpoint: 'embeddings',
        promptTokens,
        completionTokens: 0,
        startedAt,
        finishedAt: Date.now(),
        finishReason: 'stop',
      });
      ctx.metrics.promptTokens.inc({}, promptTokens);
      const base64 = body.encoding_format === 'base64';
      return {
        object: 'list',
        data: embeddings.map((e, index) => ({
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('base64') : Array.from(e),
        })),
        model: ctx.modelId,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    },
  );
}

/** The request's inputs as a list: one string, strings, one token list, or token lists. */
function inputsOf(input: EmbeddingRequest['input']): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as string[] | number[][];
}
