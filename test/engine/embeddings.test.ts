// Embeddings (last-token pooling after <|endoftext|>, Matryoshka truncation, L2 norm) from a random
// checkpoint laid out as Qwen3-Embedding ships (bare `embed_tokens.weight`, `layers.N.…` names, no
// LM head, a sentence-transformers modules.json) against the float64 reference forward pass; and
// tokenize / detokenize.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/engine/model.js';
import { asEmbeddingCheckpoint, ENDOFTEXT, writeTinyFullVocab } from '../model/embedding-checkpoint.js';
import { ReferenceQwen3 } from '../model/reference.js';

function unit(v: ArrayLike<number>): number[] {
  const n = Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
  return Array.from(v, (x) => x / n);
}

describe('embeddings', () => {
  let refDir: string;
  let dir: string;
  let model: Model;
  let ref: ReferenceQwen3;

  beforeAll(async () => {
    refDir = writeTinyFullVocab();
    dir = asEmbeddingCheckpoint(refDir);
    // Small budgets so long inputs are prefilled in chunks and several inputs share a step.
    model = await loadModel(dir, { device: 'cpu', threads: 2, kvCacheMemory: 2 ** 20, kvCacheDType: 'f32', maxNumSeqs: 3, maxNumBatchedTokens: 12 });
    ref = ReferenceQwen3.load(refDir);
  });
  afterAll(() => {
    model?.dispose();
    for (const d of [refDir, dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  const expected = (ids: number[], dims = 44) => {
    const tokens = ids[ids.length - 1] === ENDOFTEXT ? ids : [...ids, ENDOFTEXT];
    const h = ref.hidden(tokens);
    return unit(h[h.length - 1].subarray(0, dims));
  };

  it('is detected from modules.json and pools the last token after <|endoftext|> (vs float64)', async () => {
    expect(model.task).toBe('embed');
    const texts = ['Hello, world!', 'A somewhat longer input that needs more than one chunk of twelve tokens to prefill.', 'x'];
    const tokenInput = [9707, 11, 1879, ENDOFTEXT]; // already ends with the end token: not appended again
    const { embeddings, promptTokens } = await model.embed([...texts, tokenInput]);
    const ids = texts.map((t) => model.tokenize({ prompt: t }));
    expect(promptTokens).toBe(ids.reduce((a, x) => a + x.length + 1, 0) + tokenInput.length);
    [...ids, tokenInput].forEach((x, i) => {
      const want = expected(x);
      expect(embeddings[i].length).toBe(44);
      const err = Math.max(...want.map((w, j) => Math.abs(w - embeddings[i][j])));
      expect(err, `input ${i}`).toBeLessThan(1e-4);
    });
  });

  it('truncates to `dimensions` before normalising (Matryoshka)', async () => {
    const ids = model.tokenize({ prompt: 'truncate me' });
    const { embeddings } = await model.embed([ids], { dimensions: 17 });
    const want = expected(ids, 17);
    expect(embeddings[0].length).toBe(17);
    expect(Math.max(...want.map((w, j) => Math.abs(w - embeddings[0][j])))).toBeLessThan(1e-4);
  });

  it('concurrent calls each get their own answers', async () => {
    const [a, b] = await Promise.all([model.embed(['first']), model.embed(['second', 'first'])]);
    expect(Array.from(b.embeddings[1])).toEqual(Array.from(a.embeddings[0]));
  });

  it('refuses bad input by parameter, and generation', async () => {
    await expect(model.embed([])).rejects.toMatchObject({ param: 'input', message: 'the input list is empty' });
    await expect(model.embed(['ok', ''])).rejects.toMatchObject({ param: 'input', message: 'input 1 is empty' });
    await expect(model.embed([[5, 151_936]])).rejects.toMatchObject({ param: 'input', message: 'input 0: token id 151936 is outside the vocabulary of 151936' });
    await expect(model.embed(['ok'], { dimensions: 45 })).rejects.toMatchObject({ param: 'dimensions' });
    expect(() => model.generate([1, 2])).toThrow('is an embedding model');
  });
});

describe('tokenize and detokenize', () => {
  let dir: string;
  let model: Model;
  beforeAll(async () => {
    dir = writeTinyFullVocab();
    model = await loadModel(dir, { device: 'cpu', threads: 2, kvCacheMemory: 2 ** 20 });
  });
  afterAll(() => {
    model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips text, renders chat messages, and names bad ids', async () => {
    expect(model.task).toBe('generate');
    const ids = model.tokenize({ prompt: 'Hello, world! 你好' });
    expect(model.detokenize(ids)).toBe('Hello, world! 你好');
    const chat = model.tokenize({ messages: [{ role: 'user', content: 'hi' }], enableThinking: false });
    expect(model.detokenize(chat)).toBe(model.renderChat([{ role: 'user', content: 'hi' }], { enableThinking: false }));
    expect(() => model.detokenize([1, 151_936])).toThrow('token id 151936 is outside the vocabulary of 151936');
    await expect(model.embed(['x'])).rejects.toMatchObject({ param: 'model' });
  });
});
