// API keys (none → 401, bad → 401, revoked → 401, hashes only on disk) and usage metering (one durable
// row per request equal to the usage the client saw, streams cut short included; GET /v1/usage).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { type APIError } from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, startServer, tempDir, waitFor, type TestServer } from './fixture.js';
import type { Model } from '../../src/index.js';
import Database from 'better-sqlite3';
import { openStore } from '../../src/server/store/open.js';
import { DATABASE_FILE } from '../../src/server/store/sqlite.js';
import type { KeyStore, Store, UsageLedger, UsageRecord } from '../../src/server/store/types.js';

let model: Model;
let server: TestServer;
// A second connection to the server's database, as `paralon keys` in another process would open.
let store: Store;
let keys: KeyStore;
let usage: UsageLedger;
let alice: { key: string; id: string };
let bob: { key: string; id: string };
const messages = [{ role: 'user' as const, content: 'Count to ten.' }];

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  const dataDir = tempDir('keys');
  store = await openStore({ dataDir });
  ({ keys, usage } = store);
  const a = await keys.create('alice');
  const b = await keys.create('bob');
  alice = { key: a.key, id: a.info.id };
  bob = { key: b.key, id: b.info.id };
  server = await startServer({ model, dataDir });
});

afterAll(async () => {
  await server?.close();
  await store?.close();
  model?.dispose();
});

const rowsFor = async (keyId: string) => (await usage.recent(1000)).filter((r) => r.keyId === keyId && r.state !== 'running');

/** Waits for the completed usage row of the next request of `keyId` (rows are completed as a request ends). */
async function nextRow(keyId: string, before: number): Promise<UsageRecord> {
  return waitFor(async () => {
    const rows = await rowsFor(keyId);
    return rows.length > before ? rows[0] : undefined;
  });
}

describe('API keys', () => {
  it('are stored only as SHA-256 hashes', async () => {
    const hash = createHash('sha256').update(alice.key).digest('hex');
    const db = new Database(path.join(server.dataDir, DATABASE_FILE), { readonly: true });
    expect(db.prepare('SELECT hash FROM api_keys WHERE id = ?').get(alice.id)).toEqual({ hash });
    db.close();
    expect(alice.key).toMatch(/^prlc_[A-Za-z0-9_-]{43}$/);
    for (const file of readdirSync(server.dataDir)) expect(readFileSync(path.join(server.dataDir, file)).includes(alice.key)).toBe(false);
    expect((await keys.list()).map((k) => k.hint)).toEqual([`prlc_…${alice.key.slice(-4)}`, `prlc_…${bob.key.slice(-4)}`]);
  });

  it('are required on /v1 routes: missing or wrong → 401', async () => {
    expect(server.app.paralon.keysRequired).toBe(true);
    for (const bad of ['no-key', `prlc_${'A'.repeat(43)}`, alice.key.slice(0, -1), `${alice.key}x`]) {
      const e = await server.client(bad).models.list().catch((error: unknown) => error);
      expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((e as APIError).code).toBe('invalid_api_key');
    }
    const noHeader = await fetch(server.url('/v1/models'));
    expect(noHeader.status).toBe(401);
    expect((await noHeader.json()).error.message).toMatch(/didn't provide an API key/);
    expect((await server.client(alice.key).models.list()).data[0].id).toBe(DEMO_MODEL_ID);
  });

  it('are not needed for /health and /metrics', async () => {
    expect((await fetch(server.url('/health'))).status).toBe(200);
    expect((await fetch(server.url('/metrics'))).status).toBe(200);
  });

  it('stop working as soon as they are revoked, by another process', async () => {
    const temp = await keys.create('temporary');
    const client = server.client(temp.key);
    await client.models.list();
    expect(await keys.revoke('temporary')).toBe(1);
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await keys.list()).find((k) => k.id === temp.info.id)?.revokedAt).toBeInstanceOf(Date);
  });
});

describe('usage metering', () => {
  it('writes one row per request equal to the usage the client got', async () => {
    const client = server.client(alice.key);
    let before = (await rowsFor(alice.id)).length;
    const r = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 5, n: 2, ignore_eos: true } as never);
    const row = await nextRow(alice.id, before);
    expect(row).toMatchObject({
      requestId: r.id.replace(/^chatcmpl-/, ''),
      keyId: alice.id,
      model: DEMO_MODEL_ID,
      endpoint: 'chat.completions',
      promptTokens: r.usage!.prompt_tokens,
      completionTokens: r.usage!.completion_tokens,
      finishReason: 'length',
    });
    expect(r.usage!.completion_tokens).toBe(10);
    expect(row.finishedAt).toBeGreaterThanOrEqual(row.startedAt);

    before = (await rowsFor(alice.id)).length;
    const stream = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    let seen: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) seen = chunk.usage ?? seen;
    const streamRow = await nextRow(alice.id, before);
    expect({ promptTokens: streamRow.promptTokens, completionTokens: streamRow.completionTokens }).toEqual({
      promptTokens: seen!.prompt_tokens,
      completionTokens: seen!.completion_tokens,
    });

    before = (await rowsFor(bob.id)).length;
    const c = await server.client(bob.key).completions.create({ model: DEMO_MODEL_ID, prompt: 'abc', max_tokens: 3 });
    expect(await nextRow(bob.id, before)).toMatchObject({ endpoint: 'completions', promptTokens: c.usage!.prompt_tokens, completionTokens: c.usage!.completion_tokens });

    // The Responses API: keyed and metered the same way, streamed or not.
    for (const stream of [false, true]) {
      before = (await rowsFor(bob.id)).length;
      const params = { model: DEMO_MODEL_ID, input: 'abc', max_output_tokens: 3 };
      const u = stream
        ? (await server.client(bob.key).responses.stream(params).finalResponse()).usage!
        : (await server.client(bob.key).responses.create(params)).usage!;
      expect(await nextRow(bob.id, before)).toMatchObject({ endpoint: 'responses', promptTokens: u.input_tokens, completionTokens: u.output_tokens });
    }
    expect((await server.client().responses.create({ model: DEMO_MODEL_ID, input: 'abc' }).catch((e: unknown) => e)) as object).toMatchObject({ status: 401 });
    const metrics = await (await fetch(server.url('/metrics'))).text();
    expect(metrics).toMatch(/paralon_requests_total\{route="\/v1\/responses",code="200"\} [1-9]/);
  });

  it('meters a stream the client aborts halfway, cancels it within a step and frees its KV blocks', async () => {
    const before = (await rowsFor(alice.id)).length;
    const stream = await server.client(alice.key).chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_tokens: 300,
      ignore_eos: true,
      stream: true,
    } as never);
    let contentChunks = 0;
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) {
      if (chunk.choices[0]?.delta.content) contentChunks++;
      if (contentChunks === 3) break; // the SDK aborts the HTTP request
    }
    const row = await nextRow(alice.id, before);
    expect(row.finishReason).toBe('cancelled');
    // Tokens seen, plus at most the few steps in flight while the disconnect travelled.
    expect(row.completionTokens).toBeGreaterThanOrEqual(3);
    expect(row.completionTokens).toBeLessThan(12);
    await waitFor(() => (model.stats().engine.running === 0 ? true : undefined));
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
    expect(model.stats().kv.usedBlocks).toBe(0);
  });

  it('GET /v1/usage returns the caller’s own totals by day', async () => {
    const sum = (rows: UsageRecord[]) => ({
      requests: rows.length,
      prompt_tokens: rows.reduce((s, r) => s + r.promptTokens, 0),
      completion_tokens: rows.reduce((s, r) => s + r.completionTokens, 0),
    });
    for (const who of [alice, bob]) {
      const res = await fetch(server.url('/v1/usage'), { headers: { authorization: `Bearer ${who.key}` } });
      const body = await res.json();
      const expected = sum(await rowsFor(who.id));
      expect(body.key_id).toBe(who.id);
      expect(body.total).toEqual({ ...expected, total_tokens: expected.prompt_tokens + expected.completion_tokens });
      expect(body.data).toHaveLength(1);
      expect(body.data[0]).toMatchObject({ date: new Date().toISOString().slice(0, 10), model: DEMO_MODEL_ID, requests: expected.requests });
    }
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const later = await fetch(server.url(`/v1/usage?start_date=${tomorrow}`), { headers: { authorization: `Bearer ${alice.key}` } });
    expect((await later.json()).total.requests).toBe(0);
  });
});

describe('without keys', () => {
  it('runs open, meters under no key, and requires keys once one is created', async () => {
    const open = await startServer({ model });
    try {
      expect(open.app.paralon.keysRequired).toBe(false);
      const r = await open.client().chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 2 });
      const res = await fetch(open.url('/v1/usage'));
      const body = await res.json();
      expect(body.key_id).toBeNull();
      expect(body.total.completion_tokens).toBe(r.usage!.completion_tokens);

      const otherStore = await openStore({ dataDir: open.dataDir });
      const { key } = await otherStore.keys.create('late');
      await otherStore.close();
      await expect(open.client().models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await open.client(key).models.list();
    } finally {
      await open.close();
    }
  });
});
