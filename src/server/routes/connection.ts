import type { FastifyReply } from 'fastify';
import type { Generation } from '../generation.js';

/**
 * A client that closes its connection before the response is complete cancels the generation: the
 * engine drops it before its next step and frees its KV blocks.
 */
export function abortOnDisconnect(reply: FastifyReply, generation: Generation): void {
  const response = reply.raw;
  if (response.destroyed) {
    generation.abort();
    return;
  }
  response.once('close', () => {
    if (!response.writableFinished) generation.abort();
  });
}
