// Bearer-key authentication for the /v1 routes (registered inside the /v1 plugin only, so /health and
// /metrics stay open). The key id becomes request.keyId, under which usage is metered, and its limits
// request.rateLimits, which generation admissions enforce.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidApiKey } from './errors.js';
import type { ServerContext } from './context.js';
import { NO_LIMITS, type RateLimits } from './store/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's API key id; null when the server runs open. */
    keyId: string | null;
    /** The caller's key's rate limits (none when the server runs open). */
    rateLimits: RateLimits;
  }
}

export function installAuth(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('keyId', null);
  // Fastify refuses object defaults on request decorators (they would be shared): set per request.
  app.decorateRequest('rateLimits', null as unknown as RateLimits);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    request.rateLimits = NO_LIMITS;
    if (!(await ctx.keysRequired())) return;
    const header = request.headers.authorization;
    if (header === undefined || header === '')
      throw invalidApiKey("You didn't provide an API key. Pass it as 'Authorization: Bearer prlc_…'.");
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const key = match ? await ctx.keys.verify(match[1]) : null;
    if (key === null) throw invalidApiKey('Incorrect API key provided.');
    request.keyId = key.id;
    request.rateLimits = key.limits;
  });
}
