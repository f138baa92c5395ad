// GET /v1/models and GET /v1/models/{id}.
export const ModelSchema = {
  $id: 'Model',
  type: 'object',
  required: ['id', 'object', 'created', 'owned_by'],
  properties: {
    id: { type: 'string' },
    object: { type: 'string', const: 'model' },
    created: { type: 'integer' },
    owned_by: { type: 'string' },
    /** Prompt + completion tokens of one request at most (as vLLM reports it). */
    max_model_len: { type: 'integer' },
  },
} as const;

export const ModelListSchema = {
  type: 'object',
  required: ['object', 'data'],
  properties: {
    object: { type: 'string', const: 'list' },
    data: { type: 'array', items: { $ref: 'Model#' } },
  },
} as const;

export const ModelParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string' } },
} as const;
