// Per-key rate limits through the server and the official client: OpenAI's 429 `rate_limit_exceeded`
// with the x-ratelimit-* headers (also on successful responses), concurrency, and limits edited while
// the server runs. Across replicas: store.test.ts (both stores) and fleet.test.ts (nginx, PostgreSQL).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { type APIError } from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, startServer, tempDir, waitFor, type TestServer } from './fixture.js';
import type { Model } from '../../src/index.js';
import { openStore } from '../../src/server/store/open.js';
import type { Store } from '../../src/server/store/types.js';
import { duration } from '../../src/server/rate-limits.js';

let model: Model;
let server: TestServer;
let store: Store;
const messages = [{ role: 'user' as const, content: 'Say something.' }];

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  const dataDir = tempDir('limits');
  store = await openStore({ dataDir });
  await store.keys.create('unlimited');
  server = await startServer({ model, dataDir });
});

afterAll(async () => {
  await server?.close();
  await store?.close();
  model?.dispose();
});

const chat = (key: string, extra: Record<string, unknown> = {}) =>
  server.client(key).chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 2, ...extra } as never).withResponse();

describe('per-key rate limits', () => {
  it('requests per minute: headers on every response, then 429 rate_limit_exceeded', async () => {
    const { key } = await store.keys.create('rpm', { rpm: 3, tpm: 100_000 });
    for (const remaining of [2, 1, 0]) {
      const { response } = await chat(key);
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(response.headers.get('x-ratelimit-remaining-requests')).toBe(String(remaining));
      expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+(\.\d+)?s)$/);
      expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
      expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(100_000);
      expect(response.headers.get('x-ratelimit-reset-tokens')).toBe(response.headers.get('x-ratelimit-reset-requests'));
    }
    const refused = await chat(key).catch((e: unknown) => e);
    // Unless the minute turned over between the calls.
    if (refused instanceof OpenAI.RateLimitError) {
      expect(refused.status).toBe(429);
      expect(refused.code).toBe('rate_limit_exceeded');
      expect(refused.type).toBe('rate_limit_error');
      expect(refused.message).toMatch(/requests per minute \(RPM\): limit 3/);
      expect(refused.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(Number(refused.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } else expect((refused as { response: Response }).response.status).toBe(200);
  });

  it('tokens per minute: a request whose prompt + max_tokens does not fit is refused', async () => {
    const { key } = await store.keys.create('tpm', { tpm: 200 });
    const e = await chat(key, { max_tokens: 500 }).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect((e as APIError).message).toMatch(/tokens per minute \(TPM\): limit 200/);
    const { response, data } = await chat(key, { max_tokens: 3 });
    const used = Number(response.headers.get('x-ratelimit-limit-tokens')) - Number(response.headers.get('x-ratelimit-remaining-tokens'));
    // Reserved at admission: the prompt plus max_tokens.
    expect(used).toBe(data.usage!.prompt_tokens + 3);
    expect(response.headers.get('x-ratelimit-limit-requests')).toBeNull();
  });

  it('concurrent requests: a second stream waits for the first to end; limits change while serving', async () => {
    const { key, info } = await store.keys.create('concurrent', { maxConcurrent: 1 });
    const client = server.client(key);
    const long = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 400, ignore_eos: true, stream: true } as never);
    const iterator = (long as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>)[Symbol.asyncIterator]();
    await iterator.next();
    const e = await chat(key).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect((e as APIError).message).toMatch(/at most 1 concurrent requests/);

    expect(await store.keys.setLimits(info.id, { maxConcurrent: 2 })).toBe(1);
    expect((await chat(key)).response.status).toBe(200);

    await iterator.return?.();
    await waitFor(async () => ((await store.usage.recent(20)).every((r) => r.state !== 'running') ? true : undefined));
    expect(await store.keys.setLimits(info.id, { maxConcurrent: 1 })).toBe(1);
    expect((await chat(key)).response.status).toBe(200);
  });

  it('gives back the admission of a request the engine refuses (no row, no window share)', async () => {
    const { key } = await store.keys.create('refused', { rpm: 2 });
    const rows = (await store.usage.recent(10_000)).length;
    for (let i = 0; i < 3; i++) {
      const e = await chat(key, { max_tokens: 5000 }).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e as APIError).code).toBe('context_length_exceeded');
    }
    expect((await store.usage.recent(10_000)).length).toBe(rows);
    const { response } = await chat(key);
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
  });

  it('a key without limits gets no rate-limit headers', async () => {
    const { key } = await store.keys.create('free');
    const { response } = await chat(key);
    expect([...response.headers.keys()].filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
  });

  it('writes durations as OpenAI does', () => {
    expect([duration(20), duration(1000), duration(12_340), duration(61_500)]).toEqual(['20ms', '1s', '12.34s', '1m1.5s']);
  });
});
