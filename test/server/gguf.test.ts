// The server on a GGUF model: `paralon serve --model x.gguf` resolves the model id from the file name,
// and the official OpenAI client chats with a model loaded from a GGUF alone (tokenizer and chat
// template from its metadata).
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/index.js';
import { exportQwen3Gguf } from '../../src/model/gguf/index.js';
import { resolveServeConfig } from '../../src/server/serve.js';
import { checkpointWithTokenizer } from '../model/gguf/tiny-model.js';
import { startServer, tempDir, type TestServer } from './fixture.js';

const root = tempDir('gguf-serve');
let model: Model;
let server: TestServer;
beforeAll(async () => {
  const dir = checkpointWithTokenizer(path.join(root, 'ckpt'), { hiddenSize: 32, numHeads: 2, numKvHeads: 1, headDim: 16, intermediateSize: 48, vocabSize: 100, numLayers: 1, dtype: 'bf16', seed: 9 });
  const file = path.join(root, 'Tiny-Qwen3-Q8_0.gguf');
  exportQwen3Gguf(dir, file, { dtype: 'bf16' });
  const config = resolveServeConfig({ model: file }, {});
  expect(config.modelId).toBe('tiny-qwen3');
  model = await loadModel(file, { device: 'cpu', threads: 1, kvCacheMemory: 1 << 20, id: config.modelId });
  server = await startServer({ model, modelId: config.modelId });
});
afterAll(async () => {
  await server?.close();
  model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('serving a GGUF', () => {
  it('lists the model by its GGUF name and answers a chat completion', async () => {
    const client = server.client();
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny-qwen3']);
    const r = await client.chat.completions.create({ model: 'tiny-qwen3', messages: [{ role: 'user', content: 'the thing' }], max_tokens: 4, temperature: 0 });
    expect(r.usage?.prompt_tokens).toBe(model.encodeChat([{ role: 'user', content: 'the thing' }]).length);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
  });
});
