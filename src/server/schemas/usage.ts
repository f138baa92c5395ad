// GET /v1/usage: the caller's own totals by UTC day.
export const UsageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** First UTC day to include, YYYY-MM-DD (default: everything). */
    start_date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
  },
} as const;

const dayTotals = {
  type: 'object',
  required: ['requests', 'prompt_tokens', 'completion_tokens', 'total_tokens'],
  properties: {
    date: { type: 'string' },
    model: { type: 'string' },
    requests: { type: 'integer' },
    prompt_tokens: { type: 'integer' },
    completion_tokens: { type: 'integer' },
    total_tokens: { type: 'integer' },
  },
} as const;

export const UsageResponseSchema = {
  type: 'object',
  required: ['object', 'key_id', 'data', 'total'],
  properties: {
    object: { type: 'string', const: 'list' },
    key_id: { type: ['string', 'null'] },
    data: { type: 'array', items: dayTotals },
    total: dayTotals,
  },
} as const;
