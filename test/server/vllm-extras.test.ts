// vLLM's request extras through the official `openai` client on the demo model (noise weights, so the
// expected texts come from greedy runs of the library): stop_token_ids, min_tokens,
// include_stop_str_in_output, skip_special_tokens, echo on chat, and n / best_of limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, startServer, type TestServer } from './fixture.js';
import type { Model, SamplingOptions } from '../../src/index.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const prompt = 'The quick brown fox';
const greedy = { model: DEMO_MODEL_ID, prompt, temperature: 0, ignore_eos: true };

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

/** The greedy completion of `prompt` through the library: its token ids and text. */
async function library(maxTokens: number, options: SamplingOptions = {}): Promise<{ ids: number[]; text: string; finish: string }> {
  const ids: number[] = [];
  let text = '';
  let finish = '';
  for await (const e of model.complete(prompt, { temperature: 0, maxTokens, ignoreEos: true, ...options })) {
    if (e.type === 'delta') {
      ids.push(...e.tokenIds);
      text += e.text;
    } else finish = e.finishReason;
  }
  return { ids, text, finish };
}

/** The first position ≥ 1 whose token did not occur before it. */
function firstNew(ids: number[]): number {
  const k = ids.findIndex((t, i) => i > 0 && !ids.slice(0, i).includes(t));
  expect(k).toBeGreaterThan(0);
  return k;
}

const complete = (body: Record<string, unknown>) => client.completions.create(body as never) as Promise<OpenAI.Completion>;

describe('stop_token_ids and include_stop_str_in_output', () => {
  it('ends at a listed token, its text left out unless asked for', async () => {
    // Sampled (seeded): the greedy output of the noise model repeats one token.
    const sampled = { ...greedy, temperature: 2, seed: 11 };
    const { ids } = await library(8, { temperature: 2, seed: 11 });
    const k = firstNew(ids);
    const r = await complete({ ...sampled, max_tokens: 8, stop_token_ids: [ids[k]] });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].text).toBe(model.tokenizer.decode(ids.slice(0, k)));
    expect(r.usage?.completion_tokens).toBe(k + 1);
    const kept = await complete({ ...sampled, max_tokens: 8, stop_token_ids: [ids[k]], include_stop_str_in_output: true });
    expect(kept.choices[0].text).toBe(model.tokenizer.decode(ids.slice(0, k + 1)));
    // The library spells it stopTokenIds.
    expect((await library(8, { temperature: 2, seed: 11, stopTokenIds: [ids[k]] })).ids).toEqual(ids.slice(0, k + 1));
  });

  it('keeps the stop string at the end of the text when asked', async () => {
    const { text } = await library(12);
    const stop = text.slice(3, 6);
    const at = text.indexOf(stop);
    const dropped = await complete({ ...greedy, max_tokens: 12, stop });
    expect(dropped.choices[0].text).toBe(text.slice(0, at));
    const kept = await complete({ ...greedy, max_tokens: 12, stop, include_stop_str_in_output: true });
    expect(kept.choices[0].text).toBe(text.slice(0, at + stop.length));
    expect(kept.choices[0].finish_reason).toBe('stop');
  });
});

describe('min_tokens', () => {
  it('masks the stop tokens until min_tokens are generated (server and library)', async () => {
    const { ids } = await library(6);
    const first = ids[0];
    // Without min_tokens the first token ends it at once.
    const early = await complete({ ...greedy, max_tokens: 6, stop_token_ids: [first] });
    expect(early.usage?.completion_tokens).toBe(1);
    expect(early.choices[0].text).toBe('');
    const lib = await library(6, { stopTokenIds: [first], minTokens: 3 });
    expect(lib.ids[0]).not.toBe(first);
    expect(lib.ids.slice(0, 3)).not.toContain(first);
    expect(lib.ids.length).toBeGreaterThanOrEqual(3);
    const r = await complete({ ...greedy, max_tokens: 6, stop_token_ids: [first], min_tokens: 3, logprobs: 0 });
    expect(r.usage?.completion_tokens).toBe(lib.ids.length);
    expect(r.choices[0].text).toBe(lib.text);
  });

  it('matches stop strings from the min_tokens-th token on (as vLLM)', async () => {
    // The noise model's greedy output repeats its first token, so each token's text is a stop.
    const { ids } = await library(8);
    expect(ids.every((t) => t === ids[0])).toBe(true);
    const firstText = model.tokenizer.decode([ids[0]]);
    const early = await complete({ ...greedy, max_tokens: 8, stop: firstText });
    expect(early.choices[0].text).toBe('');
    const late = await complete({ ...greedy, max_tokens: 8, stop: firstText, min_tokens: 3 });
    expect(late.choices[0].text).toBe(firstText.repeat(2));
    expect(late.choices[0].finish_reason).toBe('stop');
    expect(late.usage?.completion_tokens).toBe(3);
  });
});

describe('skip_special_tokens', () => {
  it('shows special tokens only when it is false', async () => {
    const special = model.tokenizer.encode('<|im_start|>', { addSpecialTokens: false });
    expect(special).toHaveLength(1);
    const forced = { ...greedy, max_tokens: 2, logit_bias: { [special[0]]: 100 } };
    expect((await complete(forced)).choices[0].text).toBe('');
    expect((await complete({ ...forced, skip_special_tokens: false })).choices[0].text).toBe('<|im_start|><|im_start|>');
    const chat = (await client.chat.completions.create({
      model: DEMO_MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, temperature: 0, ignore_eos: true,
      logit_bias: { [special[0]]: 100 }, skip_special_tokens: false, chat_template_kwargs: { enable_thinking: false },
    } as never)) as OpenAI.ChatCompletion;
    expect(chat.choices[0].message.content).toBe('<|im_start|>');
  });
});

describe('echo on chat', () => {
  const base = { model: DEMO_MODEL_ID, max_tokens: 3, temperature: 0, ignore_eos: true, chat_template_kwargs: { enable_thinking: false } };
  const thread = [{ role: 'user', content: 'Finish this:' }, { role: 'assistant', content: 'Once upon' }];

  it("starts the content with the final assistant message's, streamed or not", async () => {
    const plain = (await client.chat.completions.create({ ...base, messages: thread } as never)) as OpenAI.ChatCompletion;
    const echoed = (await client.chat.completions.create({ ...base, messages: thread, echo: true } as never)) as OpenAI.ChatCompletion;
    expect(echoed.choices[0].message.content).toBe('Once upon' + plain.choices[0].message.content);
    let streamed = '';
    const stream = await client.chat.completions.create({ ...base, messages: thread, echo: true, stream: true } as never);
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(echoed.choices[0].message.content);
  });

  it('echoes nothing when the last message is not the assistant’s', async () => {
    const messages = [{ role: 'user', content: 'Finish this:' }];
    const plain = (await client.chat.completions.create({ ...base, messages } as never)) as OpenAI.ChatCompletion;
    const echoed = (await client.chat.completions.create({ ...base, messages, echo: true } as never)) as OpenAI.ChatCompletion;
    expect(echoed.choices[0].message.content).toBe(plain.choices[0].message.content);
  });
});

describe('n, best_of and bad values', () => {
  const refused = async (request: Promise<unknown>, param: string, message: RegExp) => {
    const e = await request.catch((x: unknown) => x);
    expect(e).toMatchObject({ status: 400, param });
    expect((e as Error).message).toMatch(message);
  };

  it('accepts best_of equal to n and refuses any other by name', async () => {
    const r = await complete({ ...greedy, max_tokens: 1, n: 2, best_of: 2 });
    expect(r.choices).toHaveLength(2);
    await refused(complete({ ...greedy, max_tokens: 1, best_of: 3 }), 'best_of', /'best_of' \(3\) other than n \(1\) is not supported/);
    await refused(
      client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], n: 2, best_of: 4 } as never),
      'best_of',
      /best_of/,
    );
    await refused(complete({ ...greedy, max_tokens: 1, n: 17 }), 'n', /must be <= 16/);
  });

  it('refuses min_tokens above max_tokens and stop_token_ids outside the vocabulary', async () => {
    await refused(complete({ ...greedy, max_tokens: 2, min_tokens: 3 }), 'min_tokens', /min_tokens \(3\) must not exceed max_tokens \(2\)/);
    await refused(complete({ ...greedy, max_tokens: 2, stop_token_ids: [151936] }), 'stop_token_ids', /token 151936 is outside the vocabulary/);
  });
});
