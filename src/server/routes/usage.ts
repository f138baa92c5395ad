// GET /v1/usage: the caller's own metered totals by UTC day and model (requests made without a key
// when the server runs open).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { badRequest } from '../errors.js';
import { errorResponses } from '../schemas/common.js';
import { UsageQuerySchema, UsageResponseSchema } from '../schemas/usage.js';

export async function usageRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get(
    '/usage',
    { schema: { querystring: UsageQuerySchema, response: { 200: UsageResponseSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Querystring: { start_date?: string } }>) => {
      const since = request.query.start_date ? Date.parse(`${request.query.start_date}T00:00:00Z`) : 0;
      if (Number.isNaN(since)) throw badRequest(`'start_date' is not a date: ${request.query.start_date}`, 'start_date');
      const days = await ctx.usage.dailyForKey(request.keyId, since);
      const data = days.map((d) => ({
        date: d.date,
        model: d.model,
        requests: d.requests,
        prompt_tokens: d.promptTokens,
        completion_tokens: d.completionTokens,
        total_tokens: d.promptTokens + d.completionTokens,
      }));
      const total = { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      for (const d of data) {
        total.requests += d.requests;
        total.prompt_tokens += d.prompt_tokens;
        total.completion_tokens += d.completion_tokens;
        total.total_tokens += d.total_tokens;
      }
      return { object: 'list', key_id: request.keyId, data, total };
    },
  );
}
