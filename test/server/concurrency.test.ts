// Many clients at once: 32 concurrent streams all complete correctly (continuous batching behind the
// server), and /health stays fast while a long generation runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { type APIError } from 'openai';
import { rmSync } from 'node:fs';
import { DEMO_MODEL_ID, loadDemoModel, startServer, tempDir, waitFor, type TestServer } from './fixture.js';
import { openStore } from '../../src/server/store/open.js';
import type { Model } from '../../src/index.js';

let model: Model;
let server: TestServer;

beforeAll(async () => {
  ({ model } = await loadDemoModel({ maxNumSeqs: 32 }));
  server = await startServer({ model });
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

describe('concurrency', () => {
  it('completes 32 concurrent streaming clients correctly', async () => {
    const client = server.client();
    const MAX_TOKENS = 6;
    const results = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const stream = await client.chat.completions.create({
          model: DEMO_MODEL_ID,
          messages: [{ role: 'user', content: `Client ${i} asks: what is ${i} squared?` }],
          max_tokens: MAX_TOKENS,
          seed: i,
          ignore_eos: true,
          logprobs: true,
          stream: true,
          stream_options: { include_usage: true },
        } as never);
        const chunks: OpenAI.ChatCompletionChunk[] = [];
        for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) chunks.push(chunk);
        return { i, chunks };
      }),
    );
    const ids = new Set<string>();
    for (const { i, chunks } of results) {
      ids.add(chunks[0].id);
      expect(chunks[0].choices[0].delta.role).toBe('assistant');
      expect(chunks.every((c) => c.id === chunks[0].id)).toBe(true);
      const body = chunks.filter((c) => c.choices.length > 0);
      const tokens = body.flatMap((c) => c.choices[0].logprobs?.content ?? []);
      const text = body.map((c) => c.choices[0].delta.content ?? '').join('');
      expect(tokens, `client ${i}`).toHaveLength(MAX_TOKENS);
      // The tokens' bytes are the text (a character cut by max_tokens may end it as U+FFFD or not at all).
      const whole = Buffer.concat(tokens.map((t) => Buffer.from(t.bytes!))).toString('utf8');
      expect(whole.replace(/\ufffd$/, ''), `client ${i}`).toBe(text.replace(/\ufffd$/, ''));
      expect(body.at(-1)!.choices[0].finish_reason).toBe('length');
      const usage = chunks.at(-1)!.usage!;
      expect(usage.completion_tokens).toBe(MAX_TOKENS);
      expect(usage.prompt_tokens).toBe(model.encodeChat([{ role: 'user', content: `Client ${i} asks: what is ${i} squared?` }], {}).length);
    }
    expect(ids.size).toBe(32);
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
    expect(model.stats().kv.usedBlocks).toBe(0);
  });

  it('answers /health within 50 ms while a long generation runs', async () => {
    const client = server.client();
    const stream = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: 'Write a long story.' }],
      max_tokens: 200,
      stream: true,
    });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // the role chunk: the request is in the engine
    await iterator.next(); // the first token: decoding is under way
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      const res = await fetch(server.url('/health'));
      await res.json();
      latencies.push(performance.now() - start);
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(model.stats().engine.running).toBe(1);
    stream.controller.abort();
    latencies.sort((a, b) => a - b);
    expect(latencies.at(-1)!, `latencies ${latencies.map((l) => l.toFixed(1)).join(' ')}`).toBeLessThan(50);
  });

  it('answers 429 RateLimitError when the engine queue is full', async () => {
    // One running sequence, one waiting: a third concurrent request is refused.
    const small = await loadDemoModel({ maxNumSeqs: 1, maxWaiting: 1 });
    const busy = await startServer({ model: small.model });
    try {
      const client = busy.client();
      const params = { model: DEMO_MODEL_ID, messages: [{ role: 'user' as const, content: 'Go on.' }], max_tokens: 100, ignore_eos: true };
      const running = await client.chat.completions.create({ ...params, stream: true });
      const runningIt = running[Symbol.asyncIterator]();
      await runningIt.next();
      await runningIt.next(); // decoding: the only running slot is taken
      const waiting = await client.chat.completions.create({ ...params, stream: true });
      await waitFor(() => (small.model.stats().engine.waiting === 1 ? true : undefined));
      const e = await client.chat.completions.create(params).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(OpenAI.RateLimitError);
      expect((e as APIError).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
      running.controller.abort();
      waiting.controller.abort();
    } finally {
      await busy.close();
      small.model.dispose();
    }
  });
});

describe('graceful shutdown', () => {
  const params = { model: DEMO_MODEL_ID, messages: [{ role: 'user' as const, content: 'Tell me more.' }], ignore_eos: true };

  it('lets in-flight streams finish within the grace period, refusing new work meanwhile', async () => {
    const s = await startServer({ model, shutdownGraceMs: 30_000 });
    const stream = await s.client().chat.completions.create({ ...params, max_tokens: 12, stream: true, stream_options: { include_usage: true } });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    const closed = s.close();
    const health = await fetch(s.url('/health')).catch(() => null);
    // Either the listener is already closed, or the request is told the server is going away.
    if (health) expect(health.status).toBe(503);
    let usage: OpenAI.CompletionUsage | null | undefined;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) usage = r.value.usage ?? usage;
    expect(usage?.completion_tokens).toBe(12);
    await closed;
  });

  it('cancels what is still running when the grace period ends, and meters it', async () => {
    const dataDir = tempDir('shutdown');
    const s = await startServer({ model, dataDir, shutdownGraceMs: 300 });
    const stream = await s.client().chat.completions.create({ ...params, max_tokens: 500, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    const closed = s.app.close();
    let error: unknown = null;
    try {
      while (!(await iterator.next()).done);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as APIError).error).toMatchObject({ code: 'server_shutting_down' });
    await closed;
    const store = await openStore({ dataDir });
    const [row] = await store.usage.recent(1);
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
    expect(row.finishReason).toBe('cancelled');
    expect(row.completionTokens).toBeGreaterThan(0);
    expect(row.completionTokens).toBeLessThan(500);
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
  });
});
