// GET /health (never needs a key: load balancers and orchestrators poll it) and GET /metrics.
// Both answer from memory in microseconds, whatever the engine is doing.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerContext } from '../context.js';

const HealthSchema = {
  type: 'object',
  required: ['status', 'model'],
  properties: {
    status: { type: 'string', enum: ['ok', 'loading', 'failed', 'draining'] },
    model: { type: 'string' },
  },
} as const;

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get('/health', { schema: { response: { 200: HealthSchema, 503: HealthSchema } } }, async (_request, reply: FastifyReply) => {
    const status = ctx.tracker.draining ? 'draining' : ctx.state === 'ready' ? 'ok' : ctx.state;
    return reply.code(status === 'ok' ? 200 : 503).send({ status, model: ctx.modelId });
  });
  app.get('/metrics', async (_request, reply: FastifyReply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.registry.render()),
  );
}
