// Continuous batching on the CPU backend, greedy: whatever the batch a request lands in (alone,
// alongside others, joining mid-flight, prefilled in chunks, preempted and recomputed), it gets
// exactly the tokens it gets alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { RequestError } from '../../src/engine/engine.js';
import type { Model } from '../../src/engine/model.js';
import { Device } from '../../src/runtime/index.js';
import { collect, kvBytesFor, loadTiny, randomTokens, rng, writeTinyModel, type Generation } from './fixture.js';

interface Case {
  prompt: number[];
  maxTokens: number;
}

const random = rng(20261125);
// Awkward prompt lengths (1 token, block and chunk boundaries ± 1) and completion lengths.
const CASES: Case[] = [
  [1, 40], [3, 13], [7, 27], [9, 1], [17, 40], [31, 22], [33, 35], [64, 9], [65, 40], [100, 17], [150, 30], [201, 25],
].map(([n, maxTokens]) => ({ prompt: randomTokens(random, n), maxTokens }));

const greedy = (c: Case) => ({ temperature: 0, maxTokens: c.maxTokens, ignoreEos: true });

/** What must agree between two runs of a request. */
function outcome(g: Generation) {
  return { tokenIds: g.tokenIds, text: g.text, finishReason: g.finishReason, usage: g.usage };
}

describe('continuous batching (CPU, greedy)', () => {
  let dir: string;
  let device: Device;
  let model: Model; // prefix caching off: every run computes every token
  let alone: Generation[];

  beforeAll(async () => {
    dir = writeTinyModel();
    device = Device.open('cpu', { threads: 1 });
    model = await loadTiny(dir, device, { prefixCaching: false, maxNumBatchedTokens: 64 });
    alone = [];
    for (const c of CASES) alone.push(await collect(model.generate(c.prompt, greedy(c))));
  });
  afterAll(() => {
    model?.dispose();
    device?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs alone as asked: every completion token, in order, in the deltas', () => {
    alone.forEach((g, i) => {
      expect(g.finishReason).toBe('length');
      expect(g.usage).toEqual({ promptTokens: CASES[i].prompt.length, completionTokens: CASES[i].maxTokens, totalTokens: CASES[i].prompt.length + CASES[i].maxTokens });
      expect(g.tokenIds).toHaveLength(CASES[i].maxTokens);
    });
    // The prompts differ, so should the outputs (a degenerate model would make this test vacuous).
    expect(new Set(alone.map((g) => g.tokenIds.slice(0, 8).join())).size).toBe(CASES.length);
  });

  it('gives N concurrent requests exactly the outputs they get one by one, in far fewer steps', async () => {
    const before = model.stats().engine;
    const together = await Promise.all(CASES.map((c) => collect(model.generate(c.prompt, greedy(c)))));
    const after = model.stats().engine;
    together.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(alone[i])));
    const promptTokens = CASES.reduce((n, c) => n + c.prompt.length, 0);
    const completionTokens = CASES.reduce((n, c) => n + c.maxTokens, 0);
    // Every token is computed once (the last sampled token of each request never is).
    expect(after.computedTokens - before.computedTokens).toBe(promptTokens + completionTokens - CASES.length);
    // Prefill of 762 tokens in chunks of ≤ 64, then the longest completion: about 12 + 40 steps.
    expect(after.steps - before.steps).toBeLessThan(60);
    expect(after).toMatchObject({ running: 0, waiting: 0, preemptions: 0 });
    expect(model.stats().kv.usedBlocks).toBe(0);
  });

  it('lets requests join a running batch at the next step and still matches', async () => {
    // The first request announces its 3rd token; the rest join from then on, a few at a time.
    let announce: () => void = () => {};
    const running = new Promise<void>((resolve) => (announce = resolve));
    const streams = [collect(model.generate(CASES[0].prompt, greedy(CASES[0])), (n) => n >= 3 && announce())];
    await running;
    for (let i = 1; i < CASES.length; i++) {
      streams.push(collect(model.generate(CASES[i].prompt, greedy(CASES[i]))));
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(streams);
    results.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(alone[i])));
  });

  it('prefills a prompt longer than the step budget in chunks, with the same output as in one chunk', async () => {
    const chunked = await loadTiny(dir, device, { prefixCaching: false, maxNumBatchedTokens: 32, maxNumSeqs: 8 });
    const wide = await loadTiny(dir, device, { prefixCaching: false, maxNumBatchedTokens: 512, maxNumSeqs: 8 });
    try {
      const prompt = randomTokens(random, 301); // 9 chunks of 32 and one of 13
      const options = { temperature: 0, maxTokens: 12, ignoreEos: true };
      const inOne = await collect(wide.generate(prompt, options));
      expect(wide.stats().engine.steps).toBe(1 + 11);
      const inChunks = await collect(chunked.generate(prompt, options));
      expect(chunked.stats().engine.steps).toBe(10 + 11);
      expect(outcome(inChunks)).toEqual(outcome(inOne));

      // A long prompt does not stall a running decode: it shares every step with it.
      const short = CASES[4];
      let shortTokens = 0;
      let started: () => void = () => {};
      const shortStarted = new Promise<void>((resolve) => (started = resolve));
      const shortRun = collect(chunked.generate(short.prompt, greedy(short)), (n) => {
        shortTokens = n;
        started();
      });
      await shortStarted;
      const tokensBefore = shortTokens;
      let shortTokensAtLongFirst = -1;
      await collect(chunked.generate(prompt, options), () => {
        if (shortTokensAtLongFirst < 0) shortTokensAtLongFirst = shortTokens;
      });
      expect(outcome(await shortRun)).toEqual(outcome(alone[4]));
      // 301 tokens at ≤ 31 a step (the decode takes 1 of the 32) is 10 steps; the short request
      // decoded in each of them.
      expect(shortTokensAtLongFirst - tokensBefore).toBeGreaterThanOrEqual(9);
    } finally {
      chunked.dispose();
      wide.dispose();
    }
  });

  it('preempts under a tiny KV pool and still completes every request with the same output', async () => {
    // 10 blocks of 16 tokens; each request alone needs 5 to 8 of them, together about 40.
    const tiny = await loadTiny(dir, device, { kvCacheMemory: kvBytesFor(160), maxNumBatchedTokens: 64, maxNumSeqs: 8 });
    try {
      expect(tiny.kvCacheTokens).toBe(160);
      expect(tiny.contextLength).toBe(160);
      const cases = [41, 57, 66, 49, 70, 38].map((n, i) => ({ prompt: randomTokens(random, n), maxTokens: 50 + 6 * i }));
      const expected: Generation[] = [];
      for (const c of cases) expected.push(await collect(model.generate(c.prompt, greedy(c))));
      const got = await Promise.all(cases.map((c) => collect(tiny.generate(c.prompt, greedy(c)))));
      got.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(expected[i])));
      const stats = tiny.stats();
      expect(stats.engine.preemptions).toBeGreaterThan(0);
      expect(stats.kv.usedBlocks).toBe(0);
      expect(tiny.idle).toBe(true);

      // A request that can never fit is refused up front, before it queues.
      expect(() => tiny.generate(randomTokens(random, 150), { maxTokens: 11 })).toThrow(RequestError);
      expect(() => tiny.generate(randomTokens(random, 150), { maxTokens: 11 })).toThrow(/maximum context length is 160/);
      expect(() => tiny.generate(randomTokens(random, 160))).toThrow(RequestError);
      expect(tiny.stats().engine.waiting).toBe(0);
    } finally {
      tiny.dispose();
    }
  });
});

describe('prefix caching (CPU, greedy)', () => {
  let dir: string;
  let device: Device;
  let cached: Model;
  let uncached: Model;

  beforeAll(async () => {
    dir = writeTinyModel();
    device = Device.open('cpu', { threads: 1 });
    cached = await loadTiny(dir, device, { prefixCaching: true });
    uncached = await loadTiny(dir, device, { prefixCaching: false });
  });
  afterAll(() => {
    cached?.dispose();
    uncached?.dispose();
    device?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prefills only the suffix of a request sharing a 1,000-token prefix, with the same outputs as without caching', async () => {
    const random = rng(7);
    const prefix = randomTokens(random, 1000);
    const a = [...prefix, ...randomTokens(random, 37)];
    const b = [...prefix, ...randomTokens(random, 23)];
    const options = { temperature: 0, maxTokens: 20, ignoreEos: true };

    const computed = () => cached.stats().engine.computedTokens;
    const hits = () => cached.stats().kv.prefixHitTokens;
    const outA = await collect(cached.generate(a, options));
    expect(computed()).toBe(a.length + 19);
    expect(hits()).toBe(0);

    const [c0, h0] = [computed(), hits()];
    const outB = await collect(cached.generate(b, options));
    // 62 full blocks (992 tokens) are all prefix; the 63rd mixes prefix and a's own suffix.
    expect(hits() - h0).toBe(992);
    expect(computed() - c0).toBe(b.length - 992 + 19);

    expect(outcome(outA)).toEqual(outcome(await collect(uncached.generate(a, options))));
    expect(outcome(outB)).toEqual(outcome(await collect(uncached.generate(b, options))));

    // The next turn of a's conversation: its prompt and reply are cached (66 full blocks of 16);
    // only the new message is computed.
    const next = [...a, ...outA.tokenIds, ...randomTokens(random, 15)];
    const [c1, h1] = [computed(), hits()];
    const outNext = await collect(cached.generate(next, options));
    expect(hits() - h1).toBe(1056);
    expect(computed() - c1).toBe(next.length - 1056 + 19);
    expect(outcome(outNext)).toEqual(outcome(await collect(uncached.generate(next, options))));

    // The same prompt again: everything is cached but its last token, computed for the logits.
    const [c2, h2] = [computed(), hits()];
    const again = await collect(cached.generate(a, options));
    expect(hits() - h2).toBe(1024);
    expect(computed() - c2).toBe(a.length - 1024 + 19);
    expect(outcome(again)).toEqual(outcome(outA));

    expect(cached.stats().kv.usedBlocks).toBe(0);
    expect(uncached.stats().kv).toMatchObject({ prefixHitTokens: 0, cachedBlocks: 0, usedBlocks: 0 });
  });

  it('shares a system prompt across concurrent requests with the same outputs as without caching', async () => {
    const random = rng(8);
    const system = randomTokens(random, 203);
    const prompts = [5, 1, 40, 17, 64, 9].map((n) => [...system, ...randomTokens(random, n)]);
    const options = { temperature: 0, maxTokens: 15, ignoreEos: true };
    await collect(cached.generate(prompts[0], options)); // warms the cache with the system prompt
    const h0 = cached.stats().kv.prefixHitTokens;
    const withCache = await Promise.all(prompts.map((p) => collect(cached.generate(p, options))));
    const without = await Promise.all(prompts.map((p) => collect(uncached.generate(p, options))));
    withCache.forEach((g, i) => expect(outcome(g), `request ${i}`).toEqual(outcome(without[i])));
    expect(cached.stats().kv.prefixHitTokens - h0).toBeGreaterThanOrEqual(prompts.length * 192);
    expect(cached.stats().kv.usedBlocks).toBe(0);
  });
});
