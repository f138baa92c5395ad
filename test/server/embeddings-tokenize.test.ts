// /v1/embeddings through the official client (float and its default base64), metered; /tokenize and
// /detokenize in vLLM's shapes; and the 400s that keep a generative model and an embedding model apart.
import { rmSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/index.js';
import { asEmbeddingCheckpoint, writeTinyFullVocab } from '../model/embedding-checkpoint.js';
import { DEMO_MODEL_ID, loadDemoModel, postRaw, startServer, type TestServer } from './fixture.js';

describe('embeddings', () => {
  let dirs: string[] = [];
  let model: Model;
  let server: TestServer;
  beforeAll(async () => {
    const ref = writeTinyFullVocab();
    const dir = asEmbeddingCheckpoint(ref);
    dirs = [ref, dir];
    model = await loadModel(dir, { device: 'cpu', threads: 2, kvCacheMemory: 2 ** 20 });
    server = await startServer({ model });
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('answers the official client (base64 by default, float on request) and meters the tokens', async () => {
    const client = server.client();
    const input = ['The cat sat.', 'Embeddings, please.'];
    const direct = await model.embed(input, { dimensions: 16 });
    const viaBase64 = await client.embeddings.create({ model: DEMO_MODEL_ID, input, dimensions: 16 });
    const viaFloat = await client.embeddings.create({ model: DEMO_MODEL_ID, input, dimensions: 16, encoding_format: 'float' });
    for (const r of [viaBase64, viaFloat]) {
      expect(r.data.map((d) => d.index)).toEqual([0, 1]);
      r.data.forEach((d, i) => expect(d.embedding).toEqual(Array.from(direct.embeddings[i])));
      expect(r.usage).toEqual({ prompt_tokens: direct.promptTokens, total_tokens: direct.promptTokens });
    }
    const tokens = await client.embeddings.create({ model: DEMO_MODEL_ID, input: [[9707, 11], [1879]], encoding_format: 'float' });
    expect(tokens.data).toHaveLength(2);
    const rows = server.app.paralon.context.usage.recent(3);
    expect(rows.every((r) => r.endpoint === 'embeddings' && r.completionTokens === 0)).toBe(true);
  });

  it('refuses bad input by parameter, and generation on an embedding model', async () => {
    const url = server.url('/v1/embeddings');
    const bad = async (body: unknown, param: string, message: RegExp) => {
      const r = await postRaw(url, JSON.stringify({ model: DEMO_MODEL_ID, ...(body as object) }));
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json?.error?.param).toBe(param);
      expect(String(r.json?.error?.message)).toMatch(message);
    };
    await bad({ input: [] }, 'input', /input/);
    await bad({ input: ['fine', ''] }, 'input', /input 1 is empty/);
    await bad({ input: [[1, 151_936]] }, 'input', /token id 151936 is outside the vocabulary/);
    await bad({ input: 'x', dimensions: 45 }, 'dimensions', /dimensions must be an integer from 1 to 44/);
    const chat = await postRaw(server.url('/v1/chat/completions'), JSON.stringify({ model: DEMO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }] }));
    expect(chat.status).toBe(400);
    expect(chat.json?.error?.param).toBe('model');
    expect(String(chat.json?.error?.message)).toMatch(/is an embedding model/);
  });
});

describe('tokenize and detokenize (demo model)', () => {
  let demo: Awaited<ReturnType<typeof loadDemoModel>>;
  let server: TestServer;
  beforeAll(async () => {
    demo = await loadDemoModel();
    server = await startServer({ model: demo.model });
  });
  afterAll(async () => {
    await server?.close();
    demo?.model.dispose();
    if (demo) rmSync(demo.dir, { recursive: true, force: true });
  });

  const post = (route: string, body: unknown) => postRaw(server.url(route), JSON.stringify(body));

  it('tokenizes a prompt and chat messages, and detokenizes back', async () => {
    const m = demo.model;
    const r = await post('/tokenize', { prompt: 'Hello, world!', return_token_strs: true });
    expect(r.status).toBe(200);
    const ids = m.tokenize({ prompt: 'Hello, world!' });
    expect(r.json).toEqual({ count: ids.length, max_model_len: m.contextLength, tokens: ids, token_strs: ids.map((id) => m.tokenizer.tokenText(id)) });
    const messages = [{ role: 'user', content: 'Hi' }];
    const chat = (await post('/tokenize', { model: DEMO_MODEL_ID, messages, chat_template_kwargs: { enable_thinking: false } })).json as unknown as { tokens: number[] };
    expect(chat.tokens).toEqual(m.encodeChat([{ role: 'user', content: 'Hi' }], { enableThinking: false }));
    const back = await post('/detokenize', { tokens: chat.tokens });
    expect(back.json).toEqual({ prompt: m.renderChat([{ role: 'user', content: 'Hi' }], { enableThinking: false }) });
  });

  it('answers mistakes with OpenAI errors', async () => {
    const both = await post('/tokenize', { prompt: 'a', messages: [{ role: 'user', content: 'b' }] });
    expect(both.status).toBe(400);
    expect((await post('/tokenize', { model: 'other', prompt: 'a' })).status).toBe(404);
    const outside = await post('/detokenize', { tokens: [1, 151_936] });
    expect(outside.status).toBe(400);
    expect(outside.json?.error?.param).toBe('tokens');
    const embed = await server.client().embeddings.create({ model: DEMO_MODEL_ID, input: 'x' }).catch((e) => e);
    expect(embed).toBeInstanceOf(OpenAI.BadRequestError);
    expect(embed.param).toBe('model');
  });
});
