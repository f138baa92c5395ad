// Prompt logprobs over HTTP through the official `openai` client, against the float64 reference
// forward pass on a tiny random Qwen3 with the real vocabulary: an lm-evaluation-harness-style
// loglikelihood request set (contexts × continuations, echo + logprobs, max_tokens 0 with token-id
// prompts, max_tokens 1 with text prompts as lm-eval's local-completions sends), a context longer than
// the prefill chunk, prefix caching on with shared contexts, text_offset over the echo, streaming echo,
// vLLM's prompt_logprobs on both endpoints, and the 400s.
import { rmSync } from 'node:fs';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/index.js';
import type { VllmPromptLogprobs } from '../../src/server/prompt-logprobs.js';
import { writeTinyFullVocab } from '../model/embedding-checkpoint.js';
import { ReferenceQwen3 } from '../model/reference.js';
import { referencePromptLogprobs, type RefPromptLogprob } from '../reference/prompt-logprobs.js';
import { DEMO_MODEL_ID, postRaw, startServer, type TestServer } from './fixture.js';

/** f32 weights and KV cache on the CPU. */
const TOL = 2e-4;
const PREFILL_CHUNK = 40;

type Logprobs = { tokens: string[]; token_logprobs: (number | null)[]; top_logprobs: (Record<string, number> | null)[]; text_offset: number[] };
type Choice = OpenAI.Completions.CompletionChoice & { prompt_logprobs?: VllmPromptLogprobs | null };

describe('prompt logprobs over HTTP', () => {
  let dir: string;
  let model: Model;
  let server: TestServer;
  let client: OpenAI;
  let ref: ReferenceQwen3;
  const refCache = new Map<string, (RefPromptLogprob | null)[]>();
  const reference = (tokens: number[]) => {
    const key = tokens.join(',');
    if (!refCache.has(key)) refCache.set(key, referencePromptLogprobs(ref, tokens));
    return refCache.get(key)!;
  };
  const encode = (text: string) => model.tokenizer.encode(text);

  // lm-eval's loglikelihood requests: (context, continuation) pairs, several continuations per context.
  const contexts = [
    'Question: What is the capital of France?\nAnswer:',
    'The following are multiple choice questions about physics. A ball is dropped from a height of ten metres; ' +
      'ignoring air resistance, which of these best describes its speed just before it lands on the ground below? ' +
      'Think about energy conservation: potential energy at the top becomes kinetic energy at the bottom.',
    'x',
  ];
  const continuations = [' Paris', ' the speed of sound', ' 14 metres per second, roughly'];

  beforeAll(async () => {
    dir = writeTinyFullVocab();
    model = await loadModel(dir, {
      device: 'cpu', threads: 2, kvCacheMemory: 2 ** 23, kvCacheDType: 'f32', maxNumSeqs: 8, maxNumBatchedTokens: PREFILL_CHUNK, prefixCaching: true,
    });
    server = await startServer({ model });
    client = server.client();
    ref = ReferenceQwen3.load(dir);
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Checks a choice's echoed logprobs against the reference of `tokens`, and returns lm-eval's (sum, is_greedy) of the continuation. */
  function checkEcho(lp: Logprobs, tokens: number[], ctxlen: number, what: string): { sum: number; greedy: boolean } {
    const want = reference(tokens);
    expect(lp.token_logprobs[0], `${what}: first token`).toBeNull();
    expect(lp.top_logprobs[0], `${what}: first token`).toBeNull();
    for (let p = 1; p < tokens.length; p++) {
      expect(Math.abs(lp.token_logprobs[p]! - want[p]!.logprob), `${what}: token ${p}`).toBeLessThan(TOL);
      expect(lp.tokens[p]).toBe(model.tokenizer.tokenText(tokens[p]));
      expect(Object.keys(lp.top_logprobs[p]!).length, `${what}: one alternative`).toBe(1);
    }
    // lm-eval's parse_logprobs: the continuation's logprobs summed; greedy when each is its row's best.
    const cont = lp.token_logprobs.slice(ctxlen, tokens.length) as number[];
    const tops = lp.top_logprobs.slice(ctxlen, tokens.length) as Record<string, number>[];
    const sum = cont.reduce((a, b) => a + b, 0);
    const greedy = cont.every((t, j) => t === Math.max(...Object.values(tops[j])));
    const refSum = tokens.slice(ctxlen).reduce((a, _, j) => a + want[ctxlen + j]!.logprob, 0);
    const refGreedy = tokens.slice(ctxlen).every((t, j) => {
      const row = want[ctxlen + j]!.row;
      return row[t] >= row.reduce((m, v) => Math.max(m, v), -Infinity) - TOL;
    });
    expect(Math.abs(sum - refSum), `${what}: loglikelihood ${sum} vs ${refSum}`).toBeLessThan(TOL * Math.max(1, tokens.length - ctxlen));
    if (!refGreedy) expect(greedy, `${what}: is_greedy`).toBe(false);
    return { sum, greedy };
  }

  it('scores an lm-eval loglikelihood set: token-id prompts, echo + logprobs 1, max_tokens 0; twice (the second from a warm prefix cache)', async () => {
    const requests = contexts.flatMap((c) => continuations.map((k) => ({ ctx: encode(c), cont: encode(k) })));
    expect(Math.max(...requests.map((r) => r.ctx.length))).toBeGreaterThan(PREFILL_CHUNK); // one context is prefilled in chunks
    for (const round of [1, 2]) {
      const r = await client.completions.create({
        model: DEMO_MODEL_ID,
        prompt: requests.map((q) => [...q.ctx, ...q.cont]),
        echo: true,
        logprobs: 1,
        max_tokens: 0,
        temperature: 0,
      });
      expect(r.choices).toHaveLength(requests.length);
      expect(r.usage).toMatchObject({ completion_tokens: 0, prompt_tokens: requests.reduce((a, q) => a + q.ctx.length + q.cont.length, 0) });
      r.choices.forEach((choice, i) => {
        const tokens = [...requests[i].ctx, ...requests[i].cont];
        expect(choice.finish_reason).toBe('length');
        expect(choice.text).toBe(model.tokenizer.decode(tokens)); // the echo only
        const lp = choice.logprobs as unknown as Logprobs;
        expect(lp.tokens).toHaveLength(tokens.length);
        checkEcho(lp, tokens, requests[i].ctx.length, `round ${round}, request ${i}`);
      });
    }
    expect(model.stats().kv.prefixHitTokens, 'plain requests would have reused the contexts').toBe(0);
  });

  it('scores text prompts with max_tokens 1 as lm-eval sends them: the echo first, text_offset over it, then the generated token', async () => {
    const prompts = contexts.slice(0, 2).map((c, i) => c + continuations[i]);
    const r = await client.completions.create({ model: DEMO_MODEL_ID, prompt: prompts, echo: true, logprobs: 1, max_tokens: 1, temperature: 0, ignore_eos: true } as never) as OpenAI.Completion;
    r.choices.forEach((choice, i) => {
      const tokens = encode(prompts[i]);
      const lp = choice.logprobs as unknown as Logprobs;
      expect(lp.tokens).toHaveLength(tokens.length + 1); // lm-eval drops the last one ([ctxlen:-1])
      expect(choice.text.startsWith(prompts[i])).toBe(true);
      checkEcho(lp, tokens, encode(contexts[i]).length, `text prompt ${i}`);
      // Offsets: each token's text at its offset, the generated token right after the echo.
      lp.tokens.forEach((t, j) => expect(choice.text.slice(lp.text_offset[j], lp.text_offset[j] + t.length), `token ${j}`).toBe(t));
      expect(lp.text_offset[tokens.length]).toBe(prompts[i].length);
    });
  });

  it('streams the echo with its logprobs first, then the completion', async () => {
    const prompt = contexts[0];
    const tokens = encode(prompt);
    const stream = await client.completions.create({ model: DEMO_MODEL_ID, prompt, echo: true, logprobs: 1, max_tokens: 2, temperature: 0, ignore_eos: true, stream: true } as never) as unknown as AsyncIterable<OpenAI.Completion>;
    const chunks: OpenAI.Completion[] = [];
    for await (const c of stream) chunks.push(c);
    const first = chunks[0].choices[0];
    expect(first.text).toBe(prompt);
    checkEcho(first.logprobs as unknown as Logprobs, tokens, tokens.length, 'streamed echo');
    const all = chunks.flatMap((c) => c.choices.flatMap((ch) => (ch.logprobs as unknown as Logprobs | null)?.token_logprobs ?? []));
    expect(all).toHaveLength(tokens.length + 2);
  });

  it("answers vLLM's prompt_logprobs on /v1/completions (per choice) and /v1/chat/completions (on the response)", async () => {
    const prompt = contexts[1];
    const tokens = encode(prompt);
    const r = await client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 1, temperature: 0, prompt_logprobs: 3, ignore_eos: true } as never) as OpenAI.Completion;
    const choice = r.choices[0] as Choice;
    expect(choice.logprobs).toBeNull();
    expectVllm(choice.prompt_logprobs!, tokens, 3, 'completions');

    const messages = [{ role: 'user' as const, content: 'Score this prompt, please.' }];
    const chatTokens = model.encodeChat(messages);
    const chat = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 1, prompt_logprobs: 0, n: 2 } as never) as OpenAI.ChatCompletion & { prompt_logprobs?: VllmPromptLogprobs };
    expect(chat.usage?.prompt_tokens).toBe(chatTokens.length);
    expectVllm(chat.prompt_logprobs!, chatTokens, 0, 'chat');
    // Without the extra, no field.
    const plain = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 1 });
    expect('prompt_logprobs' in plain).toBe(false);
  });

  function expectVllm(got: VllmPromptLogprobs, tokens: number[], numTop: number, what: string) {
    const want = reference(tokens);
    expect(got).toHaveLength(tokens.length);
    expect(got[0]).toBeNull();
    for (let p = 1; p < tokens.length; p++) {
      const entry = got[p]!;
      const own = entry[String(tokens[p])];
      expect(Math.abs(own.logprob - want[p]!.logprob), `${what}: token ${p}`).toBeLessThan(TOL);
      expect(own.decoded_token).toBe(model.tokenizer.tokenText(tokens[p]));
      const above = Array.from(want[p]!.row).filter((v) => v > want[p]!.logprob + TOL).length;
      expect(own.rank, `${what}: rank of token ${p}`).toBeGreaterThanOrEqual(above + 1);
      const ids = Object.keys(entry);
      expect(ids.length, `${what}: the token and its alternatives`).toBeGreaterThanOrEqual(Math.max(1, numTop));
      expect(ids.length).toBeLessThanOrEqual(numTop + 1);
      for (const id of ids) expect(Math.abs(entry[id].logprob - want[p]!.row[Number(id)]), `${what}: ${p}/${id}`).toBeLessThan(TOL);
    }
  }

  it('refuses bad counts, streams with prompt_logprobs and max_tokens 0 without scoring, naming the parameter', async () => {
    const url = (route: string) => server.url(route);
    const bad = async (route: string, body: object, param: string, message: RegExp) => {
      const r = await postRaw(url(route), JSON.stringify({ model: DEMO_MODEL_ID, ...body }));
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json?.error?.param).toBe(param);
      expect(String(r.json?.error?.message)).toMatch(message);
    };
    const messages = [{ role: 'user', content: 'hi' }];
    await bad('/v1/completions', { prompt: 'a b', echo: true, logprobs: 21, max_tokens: 0 }, 'logprobs', /logprobs/);
    await bad('/v1/completions', { prompt: 'a b', prompt_logprobs: 21 }, 'prompt_logprobs', /prompt_logprobs/);
    await bad('/v1/completions', { prompt: 'a b', prompt_logprobs: -1 }, 'prompt_logprobs', /prompt_logprobs/);
    await bad('/v1/chat/completions', { messages, prompt_logprobs: 21 }, 'prompt_logprobs', /prompt_logprobs/);
    await bad('/v1/completions', { prompt: 'a b', prompt_logprobs: 1, stream: true }, 'prompt_logprobs', /stream/);
    await bad('/v1/chat/completions', { messages, prompt_logprobs: 1, stream: true }, 'prompt_logprobs', /stream/);
    await bad('/v1/completions', { prompt: 'a b', max_tokens: 0 }, 'max_tokens', /max_tokens/);
    await bad('/v1/completions', { prompt: 'a b', echo: true, max_tokens: 0 }, 'max_tokens', /max_tokens/);
    await bad('/v1/chat/completions', { messages, max_tokens: 0, prompt_logprobs: 1 }, 'max_tokens', /max_tokens/);
  });
});

