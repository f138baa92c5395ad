// Bearer-key authentication for the /v1 routes (registered inside the /v1 plugin only, so /health and
// /metrics stay open). The key id becomes request.keyId, under which usage is metered.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidApiKey } from './errors.js';
import type { ServerContext } from './context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's API key id; null when the server runs open. */
    keyId: string | null;
  }
}

export function installAuth(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('keyId', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!ctx.keysRequired()) return;
    const header = request.headers.authorization;
    if (header === undefined || header === '')
      throw invalidApiKey("You didn't provide an API key. Pass it as 'Authorization: Bearer prlc_…'.");
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const keyId = match ? ctx.keys.verify(match[1]) : null;
    if (keyId === null) throw invalidApiKey('Incorrect API key provided.');
    request.keyId = keyId;
  });
}
