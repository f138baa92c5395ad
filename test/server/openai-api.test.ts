// The OpenAI-compatible API driven by the official `openai` client against a real server on the demo
// model: response shapes, streaming, n, stop strings, seeds, logprobs, text completions, models.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, startServer, type TestServer } from './fixture.js';
import type { GenerationEvent, Model } from '../../src/index.js';
import type { ServedModel } from '../../src/server/context.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Name three prime numbers, then explain why 91 is not prime.' },
];

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

describe('chat completions', () => {
  it('answers in OpenAI’s shape, with usage counting the rendered prompt', async () => {
    const r = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 5, ignore_eos: true } as never);
    const completion = r as OpenAI.ChatCompletion;
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe(DEMO_MODEL_ID);
    expect(Math.abs(completion.created - Date.now() / 1000)).toBeLessThan(60);
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice.index).toBe(0);
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(choice.finish_reason).toBe('length');
    expect(choice.logprobs).toBeNull();
    const promptTokens = model.encodeChat(messages, {}).length;
    expect(completion.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 5, total_tokens: promptTokens + 5 });
  });

  it('accepts the neutral values of fields SDKs send by default, and the developer role as system', async () => {
    const asSystem = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 3, seed: 5, temperature: 0.9 });
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'developer', content: messages[0].content }, messages[1]],
      max_tokens: 3,
      seed: 5,
      temperature: 0.9,
      store: false,
      metadata: { team: 'eval' },
      service_tier: 'auto',
      tools: [],
      tool_choice: 'none',
      parallel_tool_calls: false,
      response_format: { type: 'text' },
      modalities: ['text'],
      logit_bias: {},
      user: 'u-1',
    } as never) as OpenAI.ChatCompletion;
    expect(r.usage!.prompt_tokens).toBe(asSystem.usage!.prompt_tokens);
    expect(r.choices[0].message.content).toBe(asSystem.choices[0].message.content);
  });

  it('refuses what cannot be served by name', async () => {
    const refused = async (fields: Record<string, unknown>, param: string, message: RegExp) => {
      const e = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages, max_tokens: 2, ...fields } as never).catch((x: unknown) => x);
      expect(e).toMatchObject({ status: 400, param });
      expect((e as Error).message).toMatch(message);
    };
    await refused({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'objekt' } } }] }, 'tools[0].function.parameters', /not a valid JSON Schema/);
    await refused({ tool_choice: 'required' }, 'tool_choice', /tool_choice 'required' needs at least one tool/);
    await refused({ modalities: ['text', 'audio'] }, 'modalities', /only the 'text' modality/);
  });

  it('accepts content as text parts and max_completion_tokens', async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'there' }] }],
      max_completion_tokens: 3,
      ignore_eos: true,
    } as never);
    expect((r as OpenAI.ChatCompletion).usage?.completion_tokens).toBe(3);
  });

  it('streams chunks that reassemble into the non-streamed answer, with a usage chunk', async () => {
    const params = { model: DEMO_MODEL_ID, messages, max_tokens: 12, seed: 7, temperature: 0.9, ignore_eos: true };
    const whole = (await client.chat.completions.create(params as never)) as OpenAI.ChatCompletion;
    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } } as never);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.id.startsWith('chatcmpl-'))).toBe(true);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    const text = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
    expect(withChoices.at(-1)?.choices[0].finish_reason).toBe('length');
    expect(withChoices.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.usage === null)).toBe(true);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
  });

  it('ends the raw event stream with data: [DONE]', async () => {
    const res = await fetch(server.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEMO_MODEL_ID, messages, max_tokens: 2, stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await res.text();
    const events = body.split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
  });

  it('returns n choices, each its own sample, with usage summed', async () => {
    const params = { model: DEMO_MODEL_ID, messages, n: 3, max_tokens: 6, temperature: 1, seed: 11, ignore_eos: true };
    const r = (await client.chat.completions.create(params as never)) as OpenAI.ChatCompletion;
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(r.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    expect(r.usage?.completion_tokens).toBe(18);
    expect(r.usage?.prompt_tokens).toBe(model.encodeChat(messages, {}).length);

    const stream = await client.chat.completions.create({ ...params, stream: true } as never);
    const texts = ['', '', ''];
    const finished: (string | null)[] = [null, null, null];
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>)
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? '';
        if (c.finish_reason) finished[c.index] = c.finish_reason;
      }
    expect(texts).toEqual(r.choices.map((c) => c.message.content));
    expect(finished).toEqual(['length', 'length', 'length']);
  });

  it('stops at a stop string, which is not part of the answer', async () => {
    const params = { model: DEMO_MODEL_ID, messages, max_tokens: 16, temperature: 0, ignore_eos: true };
    const full = ((await client.chat.completions.create(params as never)) as OpenAI.ChatCompletion).choices[0].message.content!;
    expect(full.length).toBeGreaterThan(8);
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
    const cut = full.slice(0, full.indexOf(stop));
    for (const s of [stop, ['\u0000never', stop]]) {
      const r = (await client.chat.completions.create({ ...params, stop: s } as never)) as OpenAI.ChatCompletion;
      expect(r.choices[0].message.content).toBe(cut);
      expect(r.choices[0].finish_reason).toBe('stop');
    }
    const stream = await client.chat.completions.create({ ...params, stop, stream: true } as never);
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(cut);
    expect(finish).toBe('stop');
  });

  it('reproduces a sample from its seed', async () => {
    const params = { model: DEMO_MODEL_ID, messages, max_tokens: 8, temperature: 1, top_p: 0.95, ignore_eos: true };
    const answer = async (seed: number) =>
      ((await client.chat.completions.create({ ...params, seed } as never)) as OpenAI.ChatCompletion).choices[0].message.content;
    const a = await answer(1234);
    expect(await answer(1234)).toBe(a);
    expect(await answer(4321)).not.toBe(a);
  });

  it('returns logprobs with top alternatives', async () => {
    const r = (await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_tokens: 4,
      logprobs: true,
      top_logprobs: 3,
      temperature: 0,
      ignore_eos: true,
    } as never)) as OpenAI.ChatCompletion;
    const content = r.choices[0].logprobs!.content!;
    expect(content).toHaveLength(4);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0].logprob, 5);
      if (!t.token.includes('\ufffd')) expect(Buffer.from(t.bytes!).toString('utf8')).toBe(t.token);
    }
    // The tokens' bytes are exactly the answer's UTF-8.
    expect(Buffer.concat(content.map((t) => Buffer.from(t.bytes!))).toString('utf8')).toBe(r.choices[0].message.content);
  });

  it('honours vLLM’s extras and the thinking switch', async () => {
    const r = (await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_tokens: 4,
      top_k: 5,
      min_p: 0.05,
      repetition_penalty: 1.2,
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
      ignore_eos: true,
      chat_template_kwargs: { enable_thinking: false },
      user: 'tester',
    } as never)) as OpenAI.ChatCompletion;
    // Thinking off: the template closes an empty <think> block in the prompt.
    const off = model.encodeChat(messages, { enableThinking: false }).length;
    expect(r.usage?.prompt_tokens).toBe(off);
    expect(off).toBeGreaterThan(model.encodeChat(messages, { enableThinking: true }).length);
    expect(r.choices[0].message).not.toHaveProperty('reasoning_content');
  });
});

describe('reasoning', () => {
  // The demo model's output is noise, so a scripted model stands in: Qwen3's <think> block, cut mid-tag.
  const script = ['<th', 'ink>\nI should', ' think.\n</thi', 'nk>\n\nThe answer', ' is 4.'];
  const scripted: ServedModel = {
    contextLength: 1024,
    task: 'generate',
    tokenizer: { encode: (t) => [...Buffer.from(t)], decode: (ids) => Buffer.from(ids).toString(), tokenText: (id) => String.fromCharCode(id) },
    tokenize: (input) => model.tokenize(input),
    detokenize: (ids) => model.detokenize(ids),
    embed: (inputs, options) => model.embed(inputs, options),
    prepareChat: (m, o) => model.prepareChat(m, o),
    stats: () => model.stats(),
    async *generate(prompt): AsyncGenerator<GenerationEvent> {
      for (const text of script) yield { type: 'delta', text, tokenIds: [0] };
      yield { type: 'done', finishReason: 'stop', usage: { promptTokens: prompt.length, completionTokens: script.length, totalTokens: prompt.length + script.length } };
    },
  };

  it('splits <think>…</think> into reasoning_content and its alias reasoning, streamed or not', async () => {
    const s = await startServer({ model: scripted });
    try {
      const params = { model: DEMO_MODEL_ID, messages };
      const r = await s.client().chat.completions.create(params);
      const message = r.choices[0].message as OpenAI.ChatCompletionMessage & { reasoning_content?: string; reasoning?: string };
      expect(message.reasoning_content).toBe('I should think.');
      expect(message.reasoning).toBe('I should think.');
      expect(message.content).toBe('The answer is 4.');
      let reasoning = '';
      let alias = '';
      let content = '';
      for await (const chunk of await s.client().chat.completions.create({ ...params, stream: true })) {
        const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string; reasoning?: string } | undefined;
        reasoning += delta?.reasoning_content ?? '';
        alias += delta?.reasoning ?? '';
        content += delta?.content ?? '';
      }
      expect({ reasoning, alias, content }).toEqual({ reasoning: 'I should think.', alias: 'I should think.', content: 'The answer is 4.' });
    } finally {
      await s.close();
    }
  });
});

describe('reasoning sent back', () => {
  it('accepts an assistant message with reasoning or reasoning_content, rendered alike', async () => {
    // Qwen3's template renders the reasoning of assistant turns after the last user message only.
    const last = (extra: Record<string, string>) =>
      client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [...messages, { role: 'assistant', content: 'Four.', ...extra } as never], max_tokens: 1 });
    const viaAlias = await last({ reasoning: 'Two plus two.' });
    const viaContent = await last({ reasoning_content: 'Two plus two.' });
    const without = await last({});
    expect(viaAlias.usage?.prompt_tokens).toBe(viaContent.usage?.prompt_tokens);
    expect(viaAlias.usage?.prompt_tokens).toBeGreaterThan(without.usage!.prompt_tokens);
  });
});

describe('text completions', () => {
  it('completes a raw prompt, echoes it, and reports logprobs', async () => {
    const prompt = 'The quick brown fox';
    const r = await client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 4, temperature: 0, ignore_eos: true } as never);
    expect(r.id).toMatch(/^cmpl-/);
    expect(r.object).toBe('text_completion');
    expect(r.usage).toEqual({ prompt_tokens: model.tokenizer.encode(prompt).length, completion_tokens: 4, total_tokens: model.tokenizer.encode(prompt).length + 4 });
    const echoed = await client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 4, temperature: 0, echo: true, ignore_eos: true } as never);
    expect(echoed.choices[0].text).toBe(prompt + r.choices[0].text);

    const withLogprobs = await client.completions.create({ model: DEMO_MODEL_ID, prompt, max_tokens: 4, temperature: 0, logprobs: 2, ignore_eos: true } as never);
    const lp = withLogprobs.choices[0].logprobs!;
    expect(lp.tokens).toHaveLength(4);
    expect(lp.tokens!.join('')).toBe(withLogprobs.choices[0].text);
    expect(lp.text_offset).toEqual(lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join('').length));
    expect(lp.top_logprobs!.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2)).toBe(true);
  });

  it('takes token ids and batches of prompts, n per prompt', async () => {
    const ids = model.tokenizer.encode('Hello world');
    const r = await client.completions.create({ model: DEMO_MODEL_ID, prompt: [ids, ids.slice(0, 1)], n: 2, max_tokens: 3, ignore_eos: true } as never);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.usage).toEqual({ prompt_tokens: ids.length + 1, completion_tokens: 12, total_tokens: ids.length + 13 });
  });

  it('streams text completions', async () => {
    const params = { model: DEMO_MODEL_ID, prompt: 'Once upon a time', max_tokens: 6, seed: 3, ignore_eos: true };
    const whole = await client.completions.create(params as never);
    const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } } as never);
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.Completion>) {
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(usage).toEqual(whole.usage);
  });
});

describe('models, health and metrics', () => {
  it('lists and retrieves the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([DEMO_MODEL_ID]);
    const m = await client.models.retrieve(DEMO_MODEL_ID);
    expect(m).toMatchObject({ id: DEMO_MODEL_ID, object: 'model', owned_by: 'paralon', max_model_len: model.contextLength });
  });

  it('reports health and Prometheus metrics without a key', async () => {
    const health = await fetch(server.url('/health'));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', model: DEMO_MODEL_ID });
    const metrics = await (await fetch(server.url('/metrics'))).text();
    for (const name of [
      'paralon_requests_total{route="/v1/chat/completions",code="200"}',
      'paralon_prompt_tokens_total',
      'paralon_generation_tokens_total',
      'paralon_time_to_first_token_seconds_bucket{le="+Inf"}',
      'paralon_inter_token_latency_seconds_count',
      'paralon_queue_depth 0',
      'paralon_kv_blocks_used 0',
    ])
      expect(metrics).toContain(name);
    // Every sample line is `name{labels} value`.
    for (const line of metrics.trim().split('\n').filter((l) => !l.startsWith('#')))
      expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/);
  });
});
