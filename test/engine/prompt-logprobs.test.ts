// Prompt logprobs through the library (model.generate with promptLogprobs) against the float64
// reference forward pass: a prompt longer than the prefill chunk and than the row-logits chunk,
// scoring-only requests (maxTokens 0) batched with a generating one, a shared prefix with prefix
// caching on (the second request must still get every row), generation after scoring, the refusals.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/engine/model.js';
import { RequestError } from '../../src/engine/engine.js';
import { ROW_LOGITS_CHUNK } from '../../src/model/index.js';
import type { GenerationEvent, PromptLogprobsList } from '../../src/engine/types.js';
import { writeTinyFullVocab } from '../model/embedding-checkpoint.js';
import { ReferenceQwen3 } from '../model/reference.js';
import { expectPromptLogprobs, referencePromptLogprobs } from '../reference/prompt-logprobs.js';
import { Rng } from '../reference/random.js';

/** f32 weights and KV cache on the CPU: the difference to float64 is f32 rounding. */
const TOL = 2e-4;
/** The step budget: a prefill step of a long prompt scores more rows than one rowLogits chunk. */
const STEP_TOKENS = ROW_LOGITS_CHUNK + 40;

async function drain(stream: AsyncIterable<GenerationEvent>) {
  const events: GenerationEvent[] = [];
  for await (const e of stream) events.push(e);
  const done = events[events.length - 1] as Extract<GenerationEvent, { type: 'done' }>;
  const carriers = events.filter((e) => e.promptLogprobs !== undefined);
  return { events, done, tokenIds: events.flatMap((e) => (e.type === 'delta' ? e.tokenIds : [])), carriers, promptLogprobs: carriers[0]?.promptLogprobs as PromptLogprobsList | undefined };
}

describe('prompt logprobs', () => {
  let dir: string;
  let model: Model;
  let ref: ReferenceQwen3;
  const rng = new Rng('prompt logprobs');
  const randomTokens = (n: number) => Array.from({ length: n }, () => Math.floor(rng.uniform(0, 151_000)));

  beforeAll(async () => {
    dir = writeTinyFullVocab();
    model = await loadModel(dir, { device: 'cpu', threads: 2, kvCacheMemory: 2 ** 22, kvCacheDType: 'f32', maxNumSeqs: 4, maxNumBatchedTokens: STEP_TOKENS, prefixCaching: true });
    ref = ReferenceQwen3.load(dir);
  });
  afterAll(() => {
    model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scores every prompt token of a prompt longer than the prefill and row chunks (maxTokens 0), vs float64', async () => {
    const tokens = randomTokens(STEP_TOKENS + 29); // two prefill steps, the first scored in two row chunks
    const r = await drain(model.generate(tokens, { maxTokens: 0, promptLogprobs: 5 }));
    expect(r.events).toHaveLength(1); // no delta: only the done, carrying the prompt logprobs
    expect(r.done).toMatchObject({ type: 'done', finishReason: 'length', usage: { promptTokens: tokens.length, completionTokens: 0 } });
    expectPromptLogprobs(r.promptLogprobs, referencePromptLogprobs(ref, tokens), tokens, 5, TOL, 'long prompt');
  });

  it('batches scoring requests with a generating one; a shared prefix in the cache is recomputed for the rows asked', async () => {
    const context = randomTokens(40); // two and a half 16-token blocks
    const conts = [randomTokens(3), randomTokens(7)];
    const warm = await drain(model.generate(context, { maxTokens: 1, temperature: 0 })); // puts the context's blocks in the cache
    expect(warm.done.finishReason).toBe('length');
    const hitsBefore = model.stats().kv.prefixHitTokens;
    const other = randomTokens(20);
    const [a, b, gen] = await Promise.all([
      drain(model.generate([...context, ...conts[0]], { maxTokens: 0, promptLogprobs: 1 })),
      drain(model.generate([...context, ...conts[1]], { maxTokens: 0, promptLogprobs: 0 })),
      drain(model.generate(other, { maxTokens: 4, temperature: 0, ignoreEos: true })),
    ]);
    expect(model.stats().kv.prefixHitTokens, 'scoring requests claim no cached prefix').toBe(hitsBefore);
    expectPromptLogprobs(a.promptLogprobs, referencePromptLogprobs(ref, [...context, ...conts[0]]), [...context, ...conts[0]], 1, TOL, 'context + continuation 0');
    expectPromptLogprobs(b.promptLogprobs, referencePromptLogprobs(ref, [...context, ...conts[1]]), [...context, ...conts[1]], 0, TOL, 'context + continuation 1');
    // The generating request is unaffected by the batch: the same tokens as alone.
    const alone = await drain(model.generate(other, { maxTokens: 4, temperature: 0, ignoreEos: true }));
    expect(gen.tokenIds).toEqual(alone.tokenIds);
    expect(gen.carriers).toHaveLength(0);
    // A plain request still reuses the blocks the scoring requests committed.
    await drain(model.generate([...context, ...conts[1]], { maxTokens: 1 }));
    expect(model.stats().kv.prefixHitTokens).toBeGreaterThan(hitsBefore);
  });

  it('generates after scoring: the first event carries the prompt logprobs, the tokens are those of a plain request', async () => {
    const tokens = randomTokens(30);
    const plain = await drain(model.generate(tokens, { maxTokens: 5, temperature: 0, ignoreEos: true }));
    const scored = await drain(model.generate(tokens, { maxTokens: 5, temperature: 0, ignoreEos: true, promptLogprobs: 3, logprobs: true, topLogprobs: 2 }));
    expect(scored.tokenIds).toEqual(plain.tokenIds);
    expect(scored.carriers).toHaveLength(1);
    expect(scored.carriers[0]).toBe(scored.events[0]);
    expectPromptLogprobs(scored.promptLogprobs, referencePromptLogprobs(ref, tokens), tokens, 3, TOL, 'with generation');
    // The sampled tokens' logprobs continue the same distribution: the first is row 29 of the full sequence.
    const first = scored.events[0].type === 'delta' ? scored.events[0].logprobs![0] : null;
    const want = referencePromptLogprobs(ref, [...tokens, plain.tokenIds[0]])[30]!;
    expect(Math.abs(first!.logprob - want.logprob)).toBeLessThan(TOL);
  });

  it('a one-token prompt has only the null entry', async () => {
    const r = await drain(model.generate([9707], { maxTokens: 0, promptLogprobs: 2 }));
    expect(r.promptLogprobs).toEqual([null]);
  });

  it('refuses a bad count by name, and maxTokens 0 without prompt logprobs', () => {
    const refused = (options: Parameters<Model['generate']>[1], param: string) => {
      let error: unknown;
      try {
        model.generate([1, 2, 3], options);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).param).toBe(param);
    };
    refused({ promptLogprobs: 21 }, 'prompt_logprobs');
    refused({ promptLogprobs: -1 }, 'prompt_logprobs');
    refused({ promptLogprobs: 1.5 }, 'prompt_logprobs');
    refused({ maxTokens: 0 }, 'max_tokens');
  });
});
