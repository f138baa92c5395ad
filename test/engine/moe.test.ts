// A tiny random Qwen3-MoE through the library API on the CPU, greedy: continuous batching and prefix
// caching give every request exactly the tokens it gets alone and uncached (the router and the
// expert matmuls see different batches each step).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { Model } from '../../src/engine/model.js';
import { Device } from '../../src/runtime/index.js';
import { collect, loadTiny, randomTokens, rng, writeTinyModel, type Generation } from './fixture.js';

const outcome = (g: Generation) => ({ tokenIds: g.tokenIds, text: g.text, finishReason: g.finishReason, usage: g.usage });

describe('Qwen3-MoE in the engine (CPU, greedy)', () => {
  let dir: string;
  let device: Device;
  let cached: Model;
  let uncached: Model;

  beforeAll(async () => {
    // 6 experts, top-2, layer 1 dense: the tiny model's shape otherwise.
    dir = writeTinyModel({ moe: { numExperts: 6, numExpertsPerTok: 2, moeIntermediateSize: 44, normTopkProb: true, mlpOnlyLayers: [1] } });
    device = Device.open('cpu', { threads: 1 });
    cached = await loadTiny(dir, device, { prefixCaching: true, maxNumBatchedTokens: 64 });
    uncached = await loadTiny(dir, device, { prefixCaching: false, maxNumBatchedTokens: 64 });
  });
  afterAll(() => {
    cached?.dispose();
    uncached?.dispose();
    device?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads as Qwen3MoeForCausalLM', () => {
    expect(cached.config.architecture).toBe('Qwen3MoeForCausalLM');
  });

  it('gives concurrent requests, a long one prefilled in chunks among them, the outputs they get alone', async () => {
    const random = rng(31);
    const prompts = [1, 9, 33, 150, 17].map((n) => randomTokens(random, n));
    const options = { temperature: 0, maxTokens: 12, ignoreEos: true };
    const alone: Generation[] = [];
    for (const p of prompts) alone.push(await collect(uncached.generate(p, options)));
    expect(new Set(alone.map((g) => g.tokenIds.join())).size).toBe(prompts.length);
    const together = await Promise.all(prompts.map((p) => collect(uncached.generate(p, options))));
    together.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(alone[i])));
  });

  it('reuses a cached prefix with the same outputs as without caching', async () => {
    const random = rng(32);
    const system = randomTokens(random, 130);
    const prompts = [4, 21, 9].map((n) => [...system, ...randomTokens(random, n)]);
    const options = { temperature: 0, maxTokens: 10, ignoreEos: true };
    await collect(cached.generate(prompts[0], options));
    const h0 = cached.stats().kv.prefixHitTokens;
    const withCache = await Promise.all(prompts.map((p) => collect(cached.generate(p, options))));
    const without = await Promise.all(prompts.map((p) => collect(uncached.generate(p, options))));
    withCache.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(without[i])));
    expect(cached.stats().kv.prefixHitTokens - h0).toBeGreaterThanOrEqual(prompts.length * 128);
  });
});
