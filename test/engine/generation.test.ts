// What one request asks for and gets back: seeded sampling, max_tokens, EOS, stop strings, usage,
// logprobs, and the up-front checks that turn bad parameters into RequestError (the server's 400).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { RequestError } from '../../src/engine/engine.js';
import type { Model } from '../../src/engine/model.js';
import type { SamplingOptions } from '../../src/engine/types.js';
import { Device } from '../../src/runtime/index.js';
import { collect, loadTiny, randomTokens, rng, VOCAB, writeTinyModel, type Generation } from './fixture.js';

describe('generation options (CPU)', () => {
  const dirs: string[] = [];
  let device: Device;
  let model: Model;
  const random = rng(99);

  beforeAll(async () => {
    dirs.push(writeTinyModel());
    device = Device.open('cpu', { threads: 1 });
    model = await loadTiny(dirs[0], device);
  });
  afterAll(() => {
    model?.dispose();
    device?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const run = (prompt: number[], options: SamplingOptions, m: Model = model) => collect(m.generate(prompt, options));

  it('reproduces seeded sampling across runs and whatever else is in the batch', async () => {
    const prompt = randomTokens(random, 23);
    const options = { temperature: 0.9, topP: 0.95, topK: 50, seed: 1234, maxTokens: 30, ignoreEos: true };
    const first = await run(prompt, options);
    const second = await run(prompt, options);
    expect(second.tokenIds).toEqual(first.tokenIds);

    // Alongside other requests (greedy, other seeds, other temperatures), joining in other steps.
    const others = [0, 0.5, 1.3, 0.9, 0].map((temperature, i) =>
      run(randomTokens(random, 5 + 40 * i), { temperature, seed: i, maxTokens: 10 + 7 * i, ignoreEos: true, topK: i }),
    );
    const inBatch = run(prompt, options);
    const late = new Promise<Generation>((resolve) => setImmediate(() => resolve(run(prompt, options))));
    const [batched, joined] = await Promise.all([inBatch, late, ...others]);
    expect(batched.tokenIds).toEqual(first.tokenIds);
    expect(joined.tokenIds).toEqual(first.tokenIds);

    // It really samples: another seed or greedy decoding give other tokens; no seed is random.
    expect((await run(prompt, { ...options, seed: 1235 })).tokenIds).not.toEqual(first.tokenIds);
    expect((await run(prompt, { ...options, temperature: 0 })).tokenIds).not.toEqual(first.tokenIds);
    const { seed: _, ...unseeded } = options;
    const [u1, u2] = await Promise.all([run(prompt, unseeded), run(prompt, unseeded)]);
    expect(u1.tokenIds).not.toEqual(u2.tokenIds);
  });

  it('ends at max_tokens with finish reason length, and counts usage', async () => {
    const prompt = randomTokens(random, 19);
    for (const maxTokens of [1, 2, 7]) {
      const g = await run(prompt, { temperature: 0, maxTokens, ignoreEos: true });
      expect(g.finishReason).toBe('length');
      expect(g.tokenIds).toHaveLength(maxTokens);
      expect(g.usage).toEqual({ promptTokens: 19, completionTokens: maxTokens, totalTokens: 19 + maxTokens });
    }
    // Without max_tokens, the context is the limit.
    const short = await loadTiny(dirs[0], device, { maxModelLen: 40 });
    try {
      const g = await run(prompt, { temperature: 0, ignoreEos: true }, short);
      expect(g).toMatchObject({ finishReason: 'length', usage: { promptTokens: 19, completionTokens: 21, totalTokens: 40 } });
    } finally {
      short.dispose();
    }
  });

  it('ends at an EOS token with finish reason stop, unless told to ignore it', async () => {
    const prompt = randomTokens(random, 29);
    const greedy = await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true });
    // Make the first token that is new at index ≥ 3 the EOS of the same weights.
    const k = greedy.tokenIds.findIndex((t, i) => i >= 3 && !greedy.tokenIds.slice(0, i).includes(t));
    expect(k).toBeGreaterThan(0);
    const eos = greedy.tokenIds[k];
    dirs.push(writeTinyModel({ eosTokenIds: [eos] }));
    const withEos = await loadTiny(dirs[1], device);
    try {
      const stopped = await run(prompt, { temperature: 0, maxTokens: 40 }, withEos);
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.tokenIds).toEqual(greedy.tokenIds.slice(0, k + 1)); // EOS is counted and reported
      expect(stopped.usage.completionTokens).toBe(k + 1);
      // Its text is the text before it.
      expect(stopped.text).toBe((await run(prompt, { temperature: 0, maxTokens: k, ignoreEos: true })).text);
      const ignored = await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true }, withEos);
      expect(ignored.tokenIds).toEqual(greedy.tokenIds);
      expect(ignored.finishReason).toBe('length');
    } finally {
      withEos.dispose();
    }
  });

  it('ends at a stop string, which may span tokens and is never emitted', async () => {
    // Find a prompt whose greedy text has a printable 3-character run past its first few characters.
    let found: { prompt: number[]; full: Generation; stop: string } | null = null;
    for (let attempt = 0; attempt < 20 && !found; attempt++) {
      const prompt = randomTokens(random, 11 + attempt);
      const full = await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true });
      const m = /[!-~]{3}/.exec(full.text.slice(4, Math.floor(full.text.length / 2)));
      if (m) found = { prompt, full, stop: m[0] };
    }
    expect(found).not.toBeNull();
    const { prompt, full, stop } = found!;
    const at = full.text.indexOf(stop);
    const g = await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true, stop: ['never-there', stop] });
    expect(g.finishReason).toBe('stop');
    expect(g.text).toBe(full.text.slice(0, at));
    // The tokens generated up to the one completing the stop string, all reported and counted.
    expect(g.tokenIds).toEqual(full.tokenIds.slice(0, g.tokenIds.length));
    expect(g.usage.completionTokens).toBe(g.tokenIds.length);
    expect(g.tokenIds.length).toBeLessThan(40);
    // A stop string that never occurs changes nothing; one that occurs earlier wins.
    expect((await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true, stop: ['never-there'] })).text).toBe(full.text);
    const earlier = full.text.slice(at, at + 1);
    const first = full.text.indexOf(earlier);
    expect((await run(prompt, { temperature: 0, maxTokens: 40, ignoreEos: true, stop: [stop, earlier] })).text).toBe(full.text.slice(0, first));
  });

  it('returns logprobs and top_logprobs per token, in the shape asked, within one batch', async () => {
    const tokenizer = model.tokenizer;
    const prompts = [7, 30, 2].map((n) => randomTokens(random, n));
    const [top5, top0, none, sampled] = await Promise.all([
      run(prompts[0], { temperature: 0, maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 5 }),
      run(prompts[1], { temperature: 0, maxTokens: 9, ignoreEos: true, logprobs: true }),
      run(prompts[2], { temperature: 0, maxTokens: 6, ignoreEos: true }),
      run(prompts[0], { temperature: 1, seed: 5, maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 20 }),
    ]);
    expect(none.logprobs).toEqual([]);
    expect(top0.logprobs).toHaveLength(9);
    for (const lp of top0.logprobs) expect(lp.top).toEqual([]);

    for (const g of [top5, sampled]) {
      expect(g.logprobs).toHaveLength(12);
      // One logprob entry per delta, aligned with its token.
      expect(g.deltas).toBe(12);
      expect(g.logprobs.map((lp) => lp.tokenId)).toEqual(g.tokenIds);
    }
    for (const [g, numTop, isGreedy] of [[top5, 5, true], [sampled, 20, false]] as const) {
      for (const lp of g.logprobs) {
        expect(lp.top).toHaveLength(numTop);
        expect(lp.logprob).toBeLessThanOrEqual(0);
        expect(lp.token).toBe(tokenizer.tokenText(lp.tokenId));
        expect(lp.bytes).toEqual(Array.from(tokenizer.tokenBytes(lp.tokenId)));
        let mass = 0;
        lp.top.forEach((t, j) => {
          expect(t.tokenId).toBeGreaterThanOrEqual(0);
          expect(t.tokenId).toBeLessThan(VOCAB);
          if (j > 0) expect(t.logprob).toBeLessThanOrEqual(lp.top[j - 1].logprob);
          expect(t.bytes).toEqual(Array.from(tokenizer.tokenBytes(t.tokenId)));
          expect(t.token).toBe(tokenizer.tokenText(t.tokenId));
          mass += Math.exp(t.logprob);
        });
        expect(mass).toBeLessThanOrEqual(1 + 1e-5);
        expect(new Set(lp.top.map((t) => t.tokenId)).size).toBe(numTop);
        const listed = lp.top.find((t) => t.tokenId === lp.tokenId);
        if (isGreedy) {
          expect(lp.top[0].tokenId).toBe(lp.tokenId);
          expect(lp.logprob).toBe(lp.top[0].logprob);
        } else {
          expect(lp.logprob).toBeLessThanOrEqual(lp.top[0].logprob);
          if (listed) expect(listed.logprob).toBeCloseTo(lp.logprob, 5);
        }
      }
    }
  });

  it('refuses bad requests up front with RequestError naming the parameter', () => {
    const prompt = [1, 2, 3];
    const refused = (p: readonly number[], options: SamplingOptions, param: string) => {
      let error: unknown = null;
      try {
        model.generate(p, options);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(RequestError);
      expect((error as RequestError).param).toBe(param);
    };
    refused([], {}, 'messages');
    refused([1, VOCAB], {}, 'prompt');
    refused([1, -1], {}, 'prompt');
    refused(prompt, { maxTokens: 0 }, 'max_tokens');
    refused(prompt, { maxTokens: 2.5 }, 'max_tokens');
    refused(prompt, { maxTokens: model.contextLength }, 'max_tokens');
    refused(prompt, { temperature: -0.1 }, 'temperature');
    refused(prompt, { temperature: Number.NaN }, 'temperature');
    refused(prompt, { topP: 0 }, 'top_p');
    refused(prompt, { topP: 1.5 }, 'top_p');
    refused(prompt, { topK: 1.5 }, 'top_k');
    refused(prompt, { minP: 2 }, 'min_p');
    refused(prompt, { repetitionPenalty: 0 }, 'repetition_penalty');
    refused(prompt, { seed: -1 }, 'seed');
    refused(prompt, { topLogprobs: 21 }, 'top_logprobs');
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
  });
});
