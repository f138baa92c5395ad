// --kv-cache-dtype / kvCacheDType: 'auto' follows the checkpoint's float dtype (an f32 checkpoint
// gets an f32 cache, not a silent bf16 one), an explicit dtype wins, a bad one is refused by name
// (library and `paralon serve` flag / environment).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/index.js';
import { resolveServeConfig } from '../../src/server/serve.js';
import { checkpointWithTokenizer } from '../model/gguf/tiny-model.js';

const root = mkdtempSync(path.join(tmpdir(), 'paralon-kv-dtype-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tiny = (dtype: 'f32' | 'f16' | 'bf16') =>
  checkpointWithTokenizer(path.join(root, dtype), { hiddenSize: 24, numHeads: 2, numKvHeads: 1, headDim: 16, intermediateSize: 40, vocabSize: 100, numLayers: 1, dtype, seed: 2 });

describe('kvCacheDType', () => {
  it("'auto' (the default) is the checkpoint's float dtype; an explicit dtype wins", async () => {
    const options = { device: 'cpu' as const, threads: 1, kvCacheMemory: 1 << 20 };
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const dir = tiny(dtype);
      for (const [asked, expected] of [[undefined, dtype], ['auto', dtype], ['f16', 'f16'], ['f32', 'f32'], ['fp8', 'fp8']] as const) {
        const m = await loadModel(dir, { ...options, kvCacheDType: asked });
        expect(m.kvCacheDType, `${dtype} checkpoint, kvCacheDType ${asked}`).toBe(expected);
        // The cache is used: a greedy completion runs through kvWrite and attention in that dtype.
        let n = 0;
        for await (const ev of m.complete('th', { temperature: 0, maxTokens: 3 })) if (ev.type === 'delta') n += ev.tokenIds.length;
        expect(n).toBeGreaterThan(0);
        m.dispose();
      }
    }
    await expect(loadModel(tiny('f32'), { ...options, kvCacheDType: 'fp4' as 'f16' })).rejects.toThrow(/kvCacheDType must be auto, f32, bf16, f16, fp8 \(got fp4\)/);
  });

  it('is a serve flag and environment variable, validated once', () => {
    expect(resolveServeConfig({}, {}).kvCacheDType).toBe('auto');
    expect(resolveServeConfig({ 'kv-cache-dtype': 'f16' }, {}).kvCacheDType).toBe('f16');
    expect(resolveServeConfig({}, { PARALON_KV_CACHE_DTYPE: 'f32' }).kvCacheDType).toBe('f32');
    expect(resolveServeConfig({ 'kv-cache-dtype': 'fp8' }, {}).kvCacheDType).toBe('fp8');
    expect(() => resolveServeConfig({ 'kv-cache-dtype': 'fp16' }, {})).toThrow(/--kv-cache-dtype \(PARALON_KV_CACHE_DTYPE\) must be one of auto, f32, bf16, f16, fp8, got 'fp16'/);
  });
});
