// Server-Sent Events as OpenAI streams them: `data: <json>\n\n` per event, `data: [DONE]` at the end.
// The events come from an async generator piped through a Readable, so Fastify handles backpressure
// and a client that goes away destroys the stream (and with it the generator).
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

export const SSE_DONE = 'data: [DONE]\n\n';

export function sseEvent(json: string): string {
  return `data: ${json}\n\n`;
}

export function sendEventStream(reply: FastifyReply, events: AsyncIterable<string>): FastifyReply {
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no') // tell reverse proxies (nginx) not to buffer the stream
    .send(Readable.from(events, { objectMode: false }));
}
