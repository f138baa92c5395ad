// logit_bias through the official `openai` client on the demo model: +100 forces a token, −100 bans
// the greedy one, on chat and text completions; bad ids and values are 400s naming logit_bias.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, startServer, type TestServer } from './fixture.js';
import type { Model } from '../../src/index.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const messages = [{ role: 'user' as const, content: 'Say something.' }];
const prompt = 'The quick brown fox';

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

/** The greedy completion of `prompt` through the library (token ids included). */
async function greedyIds(maxTokens: number, logitBias?: Record<number, number>): Promise<number[]> {
  const ids: number[] = [];
  for await (const e of model.complete(prompt, { temperature: 0, maxTokens, ignoreEos: true, logitBias }))
    if (e.type === 'delta') ids.push(...e.tokenIds);
  return ids;
}

describe('logit_bias', () => {
  it('+100 forces a token in chat completions, sampled or greedy', async () => {
    const forced = model.tokenizer.encode(' banana', { addSpecialTokens: false })[0];
    const text = model.tokenizer.decode([forced]);
    for (const temperature of [0, 1]) {
      const r = await client.chat.completions.create({
        model: DEMO_MODEL_ID, messages, max_tokens: 4, temperature, seed: 5, logit_bias: { [forced]: 100 }, ignore_eos: true,
      } as never) as OpenAI.ChatCompletion;
      expect(r.choices[0].message.content).toBe(text.repeat(4));
    }
  });

  it('−100 bans the greedy token in text completions; the rest of the vocabulary is unaffected', async () => {
    const [first] = await greedyIds(1);
    const plain = await client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 1, temperature: 0, ignore_eos: true } as never);
    expect(plain.choices[0].text).toBe(model.tokenizer.decode([first]));
    const banned = await client.completions.create({
      model: DEMO_MODEL_ID, prompt, max_tokens: 1, temperature: 0, ignore_eos: true, logit_bias: { [first]: -100 },
    } as never);
    const [runnerUp] = await greedyIds(1, { [first]: -100 });
    expect(runnerUp).not.toBe(first);
    expect(banned.choices[0].text).toBe(model.tokenizer.decode([runnerUp]));
    // A bias on some other token leaves the greedy choice alone.
    const other = first === 7 ? 8 : 7;
    expect(await greedyIds(1, { [other]: -100 })).toEqual([first]);
  });

  it('refuses ids outside the vocabulary, values outside −100…100 and keys that are not ids', async () => {
    const refused = async (logitBias: Record<string, unknown>, message: RegExp, route: 'chat' | 'completions' = 'chat') => {
      const request = route === 'chat'
        ? client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 2, logit_bias: logitBias } as never)
        : client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 2, logit_bias: logitBias } as never);
      const e = await request.catch((x: unknown) => x);
      expect(e).toMatchObject({ status: 400 });
      expect((e as { param: string }).param).toMatch(/^logit_bias/);
      expect((e as Error).message).toMatch(message);
    };
    await refused({ '151936': 5 }, /logit_bias token id 151936 is outside the vocabulary \(0…151935\)/);
    await refused({ '999999999': 5 }, /logit_bias token id 999999999 is outside the vocabulary/, 'completions');
    await refused({ '42': 101 }, /'logit_bias\[42\]' must be <= 100/);
    await refused({ '42': -100.5 }, /'logit_bias\[42\]' must be >= -100/, 'completions');
    await refused({ abc: 1 }, /'logit_bias' has an invalid key 'abc'/);
    await refused({ '-1': 1 }, /'logit_bias' has an invalid key '-1'/);
    await refused({ '42': 'high' }, /'logit_bias\[42\]' must be number/);
  });
});
