// Cancellation: 1,000 requests, a third aborted through an AbortSignal at a random moment, a third
// dropped by breaking out of the for-await, under a small pool (preemptions) with shared prefixes
// (shared blocks). Nothing hangs, every stream ends properly, and every block returns to the pool.
import { getEventListeners } from 'node:events';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/engine/model.js';
import type { FinishReason } from '../../src/engine/types.js';
import { Device } from '../../src/runtime/index.js';
import { collect, kvBytesFor, loadTiny, randomTokens, rng, waitIdle, writeTinyModel } from './fixture.js';

type Outcome = { kind: 'complete' | 'signal' | 'break' | 'pre-aborted'; finishReason: FinishReason | 'broke'; tokens: number };

describe('aborts (CPU)', () => {
  let dir: string;
  let device: Device;
  let model: Model;

  beforeAll(async () => {
    dir = writeTinyModel();
    device = Device.open('cpu', { threads: 1 });
    // 24 blocks of 16 tokens: with up to 16 requests of up to 90 tokens, memory runs out often.
    model = await loadTiny(dir, device, { kvCacheMemory: kvBytesFor(384), maxNumSeqs: 16, maxNumBatchedTokens: 64 });
  });
  afterAll(() => {
    model?.dispose();
    device?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns every block to the pool after 1,000 requests with random aborts, and nothing hangs', async () => {
    const random = rng(4242);
    const prefixes = [randomTokens(random, 40), randomTokens(random, 23), randomTokens(random, 17)];
    const outcomes: Outcome[] = [];

    const one = async (i: number): Promise<Outcome> => {
      const prefix = prefixes[i % 3];
      const prompt = random() < 0.5 ? [...prefix, ...randomTokens(random, 1 + Math.floor(random() * 20))] : randomTokens(random, 1 + Math.floor(random() * 50));
      const maxTokens = 1 + Math.floor(random() * 25);
      const options = { temperature: 0.8, seed: i, maxTokens, ignoreEos: random() < 0.7 };
      const r = random();
      if (r < 0.03) {
        const controller = new AbortController();
        controller.abort();
        const g = await collect(model.generate(prompt, options, { signal: controller.signal }));
        return { kind: 'pre-aborted', finishReason: g.finishReason, tokens: g.usage.completionTokens };
      }
      if (r < 0.35) {
        // Abort after a random delay: while waiting, mid-prefill or mid-decode, or after the end.
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), random() * 15);
        const g = await collect(model.generate(prompt, options, { signal: controller.signal }));
        clearTimeout(timer);
        return { kind: 'signal', finishReason: g.finishReason, tokens: g.usage.completionTokens };
      }
      if (r < 0.67) {
        // Stop reading after a few events.
        const after = Math.floor(random() * 4);
        let seen = 0;
        for await (const event of model.generate(prompt, options)) {
          if (event.type === 'done') return { kind: 'break', finishReason: event.finishReason, tokens: event.usage.completionTokens };
          if (seen++ >= after) break;
        }
        return { kind: 'break', finishReason: 'broke', tokens: seen };
      }
      const g = await collect(model.generate(prompt, options));
      expect(g.tokenIds).toHaveLength(g.usage.completionTokens);
      return { kind: 'complete', finishReason: g.finishReason, tokens: g.usage.completionTokens };
    };

    // 1,000 requests, about 16 in flight; each new one starts as another ends.
    let next = 0;
    const workers = Array.from({ length: 16 }, async () => {
      while (next < 1000) outcomes.push(await one(next++));
    });
    const all = Promise.all(workers);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hung: ${outcomes.length} of 1000 done; ${JSON.stringify(model.stats())}`)), 90_000);
    });
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
    await waitIdle(model);

    expect(outcomes).toHaveLength(1000);
    const count = (kind: Outcome['kind'], reason?: Outcome['finishReason']) =>
      outcomes.filter((o) => o.kind === kind && (reason === undefined || o.finishReason === reason)).length;
    // Each way of ending happened many times.
    expect(count('pre-aborted')).toBe(count('pre-aborted', 'cancelled'));
    expect(count('pre-aborted')).toBeGreaterThan(5);
    expect(count('signal', 'cancelled')).toBeGreaterThan(50);
    expect(count('break', 'broke')).toBeGreaterThan(50);
    expect(count('complete')).toBeGreaterThan(200);
    // Completed requests end by length or stop, never cancelled.
    for (const o of outcomes.filter((x) => x.kind === 'complete')) expect(['length', 'stop']).toContain(o.finishReason);
    for (const o of outcomes.filter((x) => x.kind === 'pre-aborted')) expect(o.tokens).toBe(0);

    const stats = model.stats();
    expect(stats.engine).toMatchObject({ running: 0, waiting: 0 });
    expect(stats.engine.preemptions).toBeGreaterThan(0);
    expect(stats.kv.usedBlocks).toBe(0);
    expect(stats.kv.prefixHitTokens).toBeGreaterThan(0);

    // The engine still works, and gives the same answer as before all this.
    const prompt = [...prefixes[0], 5, 6, 7];
    const options = { temperature: 0, maxTokens: 12, ignoreEos: true };
    const a = await collect(model.generate(prompt, options));
    expect(a).toMatchObject({ finishReason: 'length', usage: { completionTokens: 12 } });
    const fresh = await loadTiny(dir, device, { prefixCaching: false });
    try {
      expect((await collect(fresh.generate(prompt, options))).tokenIds).toEqual(a.tokenIds);
    } finally {
      fresh.dispose();
    }
    expect(model.stats().kv.usedBlocks).toBe(0);
  });

  it('detaches from a long-lived AbortSignal once a request ends', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++)
      await collect(model.generate([1 + i, 2, 3], { temperature: 0, maxTokens: 2 }, { signal: controller.signal }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // While running it is attached, and aborting ends the request as cancelled.
    const stream = model.generate([9, 8, 7], { temperature: 0, maxTokens: 300, ignoreEos: true }, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const pending = collect(stream);
    setTimeout(() => controller.abort(), 5);
    expect((await pending).finishReason).toBe('cancelled');
    await waitIdle(model);
    expect(model.stats().kv.usedBlocks).toBe(0);
  });

  it('cancels a request dropped before its first step and one still waiting for memory', async () => {
    // Dropped before the engine loop's first step: the reaper frees it without running it.
    const steps = model.stats().engine.steps;
    const controller = new AbortController();
    const stream = model.generate(randomTokens(rng(1), 30), { maxTokens: 5 }, { signal: controller.signal });
    controller.abort();
    const g = await collect(stream);
    expect(g).toMatchObject({ finishReason: 'cancelled', usage: { completionTokens: 0 } });
    expect(model.stats().engine.steps).toBe(steps);

    // Fill the pool so a newcomer waits, then cancel the newcomer while it waits.
    const big = [0, 1, 2].map((i) => collect(model.generate(randomTokens(rng(10 + i), 100), { temperature: 0, maxTokens: 28, ignoreEos: true })));
    const waiter = new AbortController();
    const waiting = collect(model.generate(randomTokens(rng(20), 100), { maxTokens: 28 }, { signal: waiter.signal }));
    await new Promise((r) => setTimeout(r, 1));
    waiter.abort();
    expect((await waiting).finishReason).toBe('cancelled');
    for (const b of await Promise.all(big)) expect(b.finishReason).toBe('length');
    await waitIdle(model);
    expect(model.stats().kv.usedBlocks).toBe(0);
  });
});
