// Tools and structured output through the official `openai` client against a real server. Two models:
// a scripted one that answers with Qwen3 tool-call text (the output path: message.tool_calls, streamed
// delta.tool_calls the SDK reassembles, no call text in content), and the demo model — random weights —
// where only the grammar makes the output valid (the enforcement path).
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { DEMO_MODEL_ID, loadDemoModel, startServer, type TestServer } from './fixture.js';
import type { GenerationEvent, Model } from '../../src/index.js';
import type { ServedModel } from '../../src/server/context.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const ajv = new Ajv2020({ strict: false });

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

const user = [{ role: 'user' as const, content: 'What is the weather in Paris, and what is 2 + 3?' }];

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1, maxLength: 8 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const ADD = {
  type: 'object',
  properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } },
  required: ['a', 'b'],
  additionalProperties: false,
};
const tools: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'add', description: 'Adds two integers', parameters: ADD } },
];
const schemaOf = (name: string) => (name === 'get_weather' ? WEATHER : ADD);

function expectValidCalls(message: OpenAI.ChatCompletionMessage, names: string[]) {
  expect(message.tool_calls?.length).toBeGreaterThan(0);
  for (const call of message.tool_calls!) {
    if (call.type !== 'function') throw new Error('not a function call');
    expect(call.id).toMatch(/^call_/);
    expect(names).toContain(call.function.name);
    const args = JSON.parse(call.function.arguments);
    expect(ajv.validate(schemaOf(call.function.name), args), `${call.function.arguments}: ${ajv.errorsText()}`).toBe(true);
  }
}

describe('tool calls on the output path (scripted model)', () => {
  // Qwen3's format, cut across tags and arguments the way a tokenizer may cut it.
  const script = [
    'Checking.\n<tool',
    '_call>\n{"name": "get_weather", "arg',
    'uments": {"city": "Paris", "unit": "cel',
    'sius"}}\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
  ];
  let scripted: TestServer;
  beforeAll(async () => {
    const facade: ServedModel = {
      contextLength: model.contextLength,
      task: 'generate',
      tokenizer: model.tokenizer,
      tokenize: (input) => model.tokenize(input),
      detokenize: (ids) => model.detokenize(ids),
      embed: (inputs, options) => model.embed(inputs, options),
      prepareChat: (m, o) => model.prepareChat(m, o),
      stats: () => model.stats(),
      async *generate(prompt, _options, call): AsyncGenerator<GenerationEvent> {
        call.constraint?.dispose();
        for (const text of script) yield { type: 'delta', text, tokenIds: [0] };
        yield { type: 'done', finishReason: 'stop', usage: { promptTokens: prompt.length, completionTokens: script.length, totalTokens: prompt.length + script.length } };
      },
    };
    scripted = await startServer({ model: facade });
  });
  afterAll(() => scripted?.close());

  it('returns message.tool_calls with finish_reason tool_calls and no call text in content', async () => {
    const r = await scripted.client().chat.completions.create({ model: DEMO_MODEL_ID, messages: user, tools });
    const completion = r as OpenAI.ChatCompletion;
    const [choice] = completion.choices;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Checking.');
    expect(choice.message.tool_calls).toEqual([
      { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } },
      { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'add', arguments: '{"a": 2, "b": 3}' } },
    ]);
  });

  it('streams delta.tool_calls that the SDK reassembles, never leaking call text into content', async () => {
    const c = scripted.client();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of await c.chat.completions.create({ model: DEMO_MODEL_ID, messages: user, tools, stream: true })) chunks.push(chunk);
    const content = chunks.map((ch) => ch.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe('Checking.');
    const deltas = chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []);
    // id, type and name only in the first delta of each call; argument fragments after.
    const firsts = deltas.filter((d) => d.id !== undefined);
    expect(firsts.map((d) => [d.index, d.type, d.function?.name])).toEqual([[0, 'function', 'get_weather'], [1, 'function', 'add']]);
    expect(deltas.filter((d) => d.id === undefined).every((d) => d.function?.name === undefined && typeof d.function?.arguments === 'string')).toBe(true);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('tool_calls');

    // The SDK's stream helper builds the same message as the non-streamed answer.
    const stream = c.chat.completions.stream({ model: DEMO_MODEL_ID, messages: user, tools });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].message.tool_calls!.map((t) => (t.type === 'function' ? [t.function.name, JSON.parse(t.function.arguments)] : null))).toEqual([
      ['get_weather', { city: 'Paris', unit: 'celsius' }],
      ['add', { a: 2, b: 3 }],
    ]);
    expect(final.choices[0].message.content).toBe('Checking.');
  });
});

describe('enforcement on the noise model', () => {
  it("tool_choice 'required': a valid call of a listed function, arguments valid against its parameters", async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: user,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 80,
      seed: 1,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const choice = (r as OpenAI.ChatCompletion).choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expectValidCalls(choice.message, ['get_weather', 'add']);
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.content).toBeNull();
  });

  it('a named function: that function, every time (n = 3)', async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: user,
      tools,
      tool_choice: { type: 'function', function: { name: 'add' } },
      parallel_tool_calls: false,
      n: 3,
      max_tokens: 60,
      seed: 2,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    for (const choice of (r as OpenAI.ChatCompletion).choices) {
      expect(choice.finish_reason).toBe('tool_calls');
      expectValidCalls(choice.message, ['add']);
    }
  });

  it('streamed tool calls on the noise model reassemble into valid calls', async () => {
    const stream = client.chat.completions.stream({
      model: DEMO_MODEL_ID,
      messages: user,
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 60,
      seed: 3,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    let leaked = '';
    stream.on('content', (delta) => (leaked += delta));
    const final = await stream.finalChatCompletion();
    expect(leaked).toBe('');
    expectValidCalls(final.choices[0].message, ['get_weather']);
  });

  it('a multi-turn conversation feeds tool results back through the template', async () => {
    const first = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: user,
      tools,
      tool_choice: 'required',
      max_tokens: 100,
      seed: 4,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const message = (first as OpenAI.ChatCompletion).choices[0].message;
    const calls = message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    const results = calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: `result ${i}` }));
    const second = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [...user, message, ...results], tools, max_tokens: 4, tool_choice: 'none' });
    expect(second.choices[0].message.tool_calls).toBeUndefined();
    // The prompt carried the calls and their results in Qwen3's format.
    const prompt = model.renderChat(
      [user[0], { role: 'assistant', content: message.content, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: c.function })) }, ...results],
      { tools: tools as never },
    );
    expect(prompt).toContain(`<tool_call>\n{"name": "${calls[0].function.name}", "arguments": ${calls[0].function.arguments}}\n</tool_call>`);
    expect(prompt).toContain('<|im_start|>user\n<tool_response>\nresult 0\n</tool_response>');
    expect(second.usage!.prompt_tokens).toBe(model.tokenizer.encode(prompt, { addSpecialTokens: false }).length);
  });


  it("auto: pushed into a call by logit_bias, the rest of the call is constrained; 'none' bans the call tag", async () => {
    const tag = model.tokenizer.tokenToId('<tool_call>')!;
    const base = { model: DEMO_MODEL_ID, messages: user, tools, logit_bias: { [tag]: 100 }, seed: 10, chat_template_kwargs: { enable_thinking: false } };
    const auto = (await client.chat.completions.create({ ...base, tool_choice: 'auto', parallel_tool_calls: false, max_tokens: 80 } as never)) as OpenAI.ChatCompletion;
    expect(auto.choices[0].finish_reason).toBe('tool_calls');
    expectValidCalls(auto.choices[0].message, ['get_weather', 'add']);
    const none = (await client.chat.completions.create({ ...base, tool_choice: 'none', max_tokens: 6, logprobs: true } as never)) as OpenAI.ChatCompletion;
    expect(none.choices[0].message.tool_calls).toBeUndefined();
    expect(none.choices[0].logprobs!.content!.map((t) => t.token)).not.toContain('<tool_call>');
  });

  it('response_format json_schema: nested objects, arrays, enums, required fields and string limits validate', async () => {
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', minLength: 2, maxLength: 12 },
        status: { type: 'string', enum: ['draft', 'final'] },
        author: {
          type: 'object',
          properties: { name: { type: 'string', maxLength: 10 }, verified: { type: 'boolean' } },
          required: ['name', 'verified'],
          additionalProperties: false,
        },
        tags: { type: 'array', items: { type: 'string', maxLength: 6 }, minItems: 1, maxItems: 3 },
      },
      required: ['title', 'status', 'author', 'tags'],
      additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: 'Describe a document as JSON.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'document', schema, strict: true } },
      max_tokens: 120,
      seed: 5,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const choice = (r as OpenAI.ChatCompletion).choices[0];
    expect(choice.finish_reason).toBe('stop');
    const value = JSON.parse(choice.message.content!);
    expect(ajv.validate(schema, value), ajv.errorsText()).toBe(true);
  });

  it('response_format json_object: a JSON object', async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: 'JSON please.' }],
      response_format: { type: 'json_object' },
      max_tokens: 40,
      seed: 6,
      logit_bias: {},
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const choice = (r as OpenAI.ChatCompletion).choices[0];
    // Within 40 tokens a random model may not close the object: a finished one must parse.
    if (choice.finish_reason === 'stop') expect(typeof JSON.parse(choice.message.content!)).toBe('object');
    else expect(choice.message.content!.startsWith('{')).toBe(true);
  });

  it('client.chat.completions.parse with a zod schema and a zod function', async () => {
    const Event = z.object({ name: z.string().max(10), day: z.enum(['mon', 'tue', 'wed']), attendees: z.array(z.string().max(5)).max(2) });
    const parsed = await client.chat.completions.parse({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: 'Alice and Bob meet on Tuesday.' }],
      response_format: zodResponseFormat(Event, 'event'),
      max_tokens: 120,
      seed: 7,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const event = parsed.choices[0].message.parsed;
    expect(Event.parse(event)).toEqual(event);

    const tool = zodFunction({ name: 'lookup', parameters: z.object({ id: z.number().int().min(0).max(999) }) });
    const withTool = await client.chat.completions.parse({
      model: DEMO_MODEL_ID,
      messages: user,
      tools: [tool],
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 60,
      seed: 8,
      chat_template_kwargs: { enable_thinking: false },
    } as never);
    const call = withTool.choices[0].message.tool_calls![0] as { function: { name: string; parsed_arguments: unknown } };
    expect(call.function.name).toBe('lookup');
    expect(call.function.parsed_arguments).toEqual({ id: expect.any(Number) });
  });

  it('with thinking on, the reasoning is free and the answer after </think> follows the schema', async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: 'user', content: 'Yes or no?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'yn', schema: { type: 'object', properties: { yes: { type: 'boolean' } }, required: ['yes'], additionalProperties: false } } },
      max_tokens: 30,
      seed: 9,
    });
    const message = r.choices[0].message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    // A random model rarely closes its think block in 30 tokens; when it does, the answer is valid.
    if (r.choices[0].finish_reason === 'stop') expect(JSON.parse(message.content!)).toEqual({ yes: expect.any(Boolean) });
    else expect(message.content ?? '').toBe('');
  });
});

describe('400s before anything is queued', () => {
  it('names the tool or response_format at fault', async () => {
    const bad = async (body: Record<string, unknown>) => {
      try {
        await client.chat.completions.create({ model: DEMO_MODEL_ID, messages: user, max_tokens: 2, ...body } as never);
      } catch (e) {
        expect(e).toBeInstanceOf(OpenAI.BadRequestError);
        return (e as InstanceType<typeof OpenAI.BadRequestError>).param;
      }
      throw new Error('no 400');
    };
    expect(await bad({ tools: [tools[0], { type: 'function', function: { name: 'x', parameters: { type: 'object', properties: { a: { type: 'strin' } } } } }] })).toBe('tools[1].function.parameters');
    expect(await bad({ tools, tool_choice: { type: 'function', function: { name: 'missing' } } })).toBe('tool_choice');
    expect(await bad({ response_format: { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'object', minProperties: 'two' } } } })).toBe('response_format.json_schema.schema');
    expect(await bad({ messages: [...user, { role: 'tool', tool_call_id: 'call_nope', content: 'x' }] })).toBe('messages[1].tool_call_id');
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
  });

  it('a schema over the compile time limit is a 400 naming response_format', async () => {
    const { model: strict } = await loadDemoModel({ grammarCompileTimeoutMs: 100 });
    const s = await startServer({ model: strict });
    try {
      const properties = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, { type: 'string', minLength: 3, maxLength: 40 + i }]));
      const schema = { type: 'object', properties, required: Object.keys(properties) };
      const err = await s
        .client()
        .chat.completions.create({ model: DEMO_MODEL_ID, messages: user, response_format: { type: 'json_schema', json_schema: { name: 'big', schema } } })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format');
      expect((err as Error).message).toMatch(/longer than the limit \(100 ms\)/);
    } finally {
      await s.close();
      strict.dispose();
    }
  });
});
