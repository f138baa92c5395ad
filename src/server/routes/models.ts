// GET /v1/models and GET /v1/models/{id}: the one served model.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelNotFound } from '../errors.js';
import { errorResponses } from '../schemas/common.js';
import { ModelListSchema, ModelParamsSchema, ModelSchema } from '../schemas/models.js';

export async function modelsRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.addSchema(ModelSchema);
  const describe = () => {
    const model = ctx.modelFor(ctx.modelId);
    return { id: ctx.modelId, object: 'model', created: ctx.createdAt, owned_by: 'paralon', max_model_len: model.contextLength };
  };
  app.get('/models', { schema: { response: { 200: ModelListSchema, ...errorResponses } } }, async () => ({
    object: 'list',
    data: [describe()],
  }));
  app.get(
    '/models/:id',
    { schema: { params: ModelParamsSchema, response: { 200: { $ref: 'Model#' }, ...errorResponses } } },
    async (request: FastifyRequest<{ Params: { id: string } }>) => {
      if (request.params.id !== ctx.modelId) throw modelNotFound(request.params.id);
      return describe();
    },
  );
}
