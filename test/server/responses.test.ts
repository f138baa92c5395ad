// POST /v1/responses through the official `openai` client: client.responses.create (plain, with
// instructions, message-list input, text.format json_schema, a required function tool, a multi-turn
// conversation with function_call_output), client.responses.stream reassembling the text up to
// response.completed with usage, a reasoning item from a scripted Qwen3-style model, and the 400s.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, postRaw, startServer, type TestServer } from './fixture.js';
import type { GenerationEvent, Model } from '../../src/index.js';
import type { ServedModel } from '../../src/server/context.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const ajv = new Ajv2020({ strict: false });
const noThinking = { chat_template_kwargs: { enable_thinking: false } } as Record<string, unknown>;

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

const create = (body: Record<string, unknown>) =>
  client.responses.create({ model: DEMO_MODEL_ID, ...body } as never) as unknown as Promise<OpenAI.Responses.Response>;

/** Prompt tokens of a chat rendering, to check what input and instructions became. */
const promptTokens = (messages: { role: 'system' | 'user' | 'assistant'; content: string }[]) =>
  model.encodeChat(messages, { enableThinking: false }).length;

describe('responses.create', () => {
  it('answers a string input with a message item, usage and the SDK’s output_text', async () => {
    const r = await create({ input: 'Say hello.', max_output_tokens: 5, temperature: 0, ...noThinking });
    expect(r.id).toMatch(/^resp_/);
    expect(r.object).toBe('response');
    expect(r.status).toBe('incomplete'); // the noise model never ends on its own within 5 tokens
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    const message = r.output.find((o) => o.type === 'message') as OpenAI.Responses.ResponseOutputMessage;
    expect(message.id).toMatch(/^msg_/);
    expect(message.content[0].type).toBe('output_text');
    expect(r.output_text).toBe((message.content[0] as OpenAI.Responses.ResponseOutputText).text);
    expect(r.usage).toEqual({
      input_tokens: promptTokens([{ role: 'user', content: 'Say hello.' }]),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens([{ role: 'user', content: 'Say hello.' }]) + 5,
    });
  });

  it('renders instructions as the system message and message-list input with text parts', async () => {
    const r = await create({
      instructions: 'Be brief.',
      input: [
        { role: 'developer', content: 'Answer in English.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello.', annotations: [] }] },
        { role: 'user', content: 'Again?' },
      ],
      max_output_tokens: 2,
      ...noThinking,
    });
    expect(r.instructions).toBe('Be brief.');
    expect(r.usage?.input_tokens).toBe(
      promptTokens([
        { role: 'system', content: 'Be brief.' },
        { role: 'system', content: 'Answer in English.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Again?' },
      ]),
    );
  });

  it('enforces a text.format json_schema (validated with Ajv) and json_object', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 6 }, tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, maxItems: 3 } },
      required: ['name', 'tags'],
      additionalProperties: false,
    };
    const r = await create({ input: 'Describe a thing.', text: { format: { type: 'json_schema', name: 'thing', schema, strict: true } }, max_output_tokens: 200, ...noThinking });
    expect(r.status).toBe('completed');
    const value = JSON.parse(r.output_text);
    expect(ajv.validate(schema, value), ajv.errorsText()).toBe(true);
    const o = await create({ input: 'Any JSON.', text: { format: { type: 'json_object' } }, max_output_tokens: 200, ...noThinking });
    expect(typeof JSON.parse(o.output_text)).toBe('object');
  });

  it('makes a required function call valid for its parameters, then takes its output back', async () => {
    const parameters = {
      type: 'object',
      properties: { city: { type: 'string', minLength: 1, maxLength: 8 } },
      required: ['city'],
      additionalProperties: false,
    };
    const tools = [{ type: 'function', name: 'get_weather', description: 'Weather in a city', parameters, strict: true }];
    const input: unknown[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const r = await create({ input, tools, tool_choice: 'required', max_output_tokens: 200, ...noThinking });
    const calls = r.output.filter((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall[];
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call.name).toBe('get_weather');
      expect(call.call_id).toMatch(/^call_/);
      expect(call.id).toMatch(/^fc_/);
      expect(ajv.validate(parameters, JSON.parse(call.arguments)), ajv.errorsText()).toBe(true);
    }
    // The next turn: the answer's items plus each call's output, as the SDK's docs do it.
    const next = [...input, ...r.output, ...calls.map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: '{"celsius": 21}' }))];
    const r2 = await create({ input: next, tools, tool_choice: 'none', max_output_tokens: 3, ...noThinking });
    expect(r2.output.some((o) => o.type === 'function_call')).toBe(false);
    expect(r2.usage!.input_tokens).toBeGreaterThan(r.usage!.input_tokens);
    // A named choice works too.
    const named = await create({ input, tools, tool_choice: { type: 'function', name: 'get_weather' }, max_output_tokens: 200, ...noThinking });
    expect(named.output.some((o) => o.type === 'function_call' && o.name === 'get_weather')).toBe(true);
  });
});

describe('responses.stream', () => {
  it('streams typed events with sequence numbers that reassemble into the final response', async () => {
    const events: { type: string; sequence_number: number }[] = [];
    let text = '';
    const stream = client.responses.stream({ model: DEMO_MODEL_ID, input: 'Count.', max_output_tokens: 6, temperature: 0, ...noThinking } as never);
    stream.on('event', (e) => events.push(e));
    stream.on('response.output_text.delta', (e) => (text += e.delta));
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type);
    expect(types.slice(0, 5)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
    ]);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(final.output_text).toBe(text);
    expect(final.usage?.output_tokens).toBe(6);
    const plain = await create({ input: 'Count.', max_output_tokens: 6, temperature: 0, ...noThinking });
    expect(text).toBe(plain.output_text);
  });

  it('ends with response.completed when the answer is complete', async () => {
    const events: string[] = [];
    const stream = client.responses.stream({
      model: DEMO_MODEL_ID, input: 'JSON please.', text: { format: { type: 'json_object' } }, max_output_tokens: 200, temperature: 0, ...noThinking, // greedy: a sampled object from the random demo model may not close within 200 tokens
    } as never);
    stream.on('event', (e) => events.push(e.type));
    const final = await stream.finalResponse();
    expect(events.at(-1)).toBe('response.completed');
    expect(final.status).toBe('completed');
    expect(final.usage?.total_tokens).toBe(final.usage!.input_tokens + final.usage!.output_tokens);
    expect(typeof JSON.parse(final.output_text)).toBe('object');
  });
});

describe('reasoning and function calls on the output path (scripted model)', () => {
  const script = ['<th', 'ink>\nLet me', ' check.\n</thi', 'nk>\n\nSure.', '\n<tool_call>\n{"name": "lookup", "arguments": {"q": "x"}}\n</tool_call>'];
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
  const tools = [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }];

  it('returns a reasoning item, a message and a function_call, whole or streamed', async () => {
    const c = scripted.client();
    const r = (await c.responses.create({ model: DEMO_MODEL_ID, input: 'Look it up.', tools } as never)) as unknown as OpenAI.Responses.Response;
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    const reasoning = r.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(reasoning.id).toMatch(/^rs_/);
    expect(reasoning.content).toEqual([{ type: 'reasoning_text', text: 'Let me check.' }]);
    expect(r.output_text).toBe('Sure.');
    const call = r.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
    expect({ name: call.name, arguments: JSON.parse(call.arguments) }).toEqual({ name: 'lookup', arguments: { q: 'x' } });
    expect(r.usage?.output_tokens_details.reasoning_tokens).toBe(3);

    let reasoningText = '';
    let args = '';
    const stream = c.responses.stream({ model: DEMO_MODEL_ID, input: 'Look it up.', tools } as never);
    stream.on('response.reasoning_text.delta', (e) => (reasoningText += e.delta));
    stream.on('response.function_call_arguments.delta', (e) => (args += e.delta));
    const final = await stream.finalResponse();
    expect(reasoningText).toBe('Let me check.');
    expect(JSON.parse(args)).toEqual({ q: 'x' });
    expect(final.output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    expect(final.usage?.output_tokens_details.reasoning_tokens).toBe(3);
  });
});

describe('refusals', () => {
  const refused = async (body: Record<string, unknown>, param: string, message: RegExp) => {
    const res = await postRaw(server.url('/v1/responses'), JSON.stringify({ model: DEMO_MODEL_ID, input: 'Hi', ...body }));
    expect(res.status, res.text).toBe(400);
    expect(res.json?.error?.type).toBe('invalid_request_error');
    // Exact, or the item within it (input[0]) for a bad input item.
    expect(String(res.json?.error?.param)).toMatch(new RegExp(`^${param.replace(/[.[\]]/g, '\\$&')}(\\[|$)`));
    expect(String(res.json?.error?.message)).toMatch(message);
  };

  it('refuses stateful fields and bad input with OpenAI errors naming the field', async () => {
    await refused({ previous_response_id: 'resp_123' }, 'previous_response_id', /stateless/);
    await refused({ store: true }, 'store', /stateless/);
    await refused({ input: [] }, 'input', /input/);
    await refused({ input: [{ role: 'tool', content: 'x' }] }, 'input', /input/);
    await refused({ tool_choice: 'required' }, 'tool_choice', /needs at least one tool/);
    await refused({ text: { format: { type: 'json_schema', name: 'x', schema: { type: 'nope' } } } }, 'text.format.schema', /text\.format/);
    await refused({ input: [{ type: 'function_call_output', call_id: 'call_x', output: '1' }] }, 'input', /.+/);
    await refused({ temperature: 3 }, 'temperature', /must be <= 2/);
    await refused({ max_output_tokens: 5000 }, 'max_output_tokens', /plus max_output_tokens \(5000\) exceeds/);
    // store: false and absent are fine.
    const ok = await postRaw(server.url('/v1/responses'), JSON.stringify({ model: DEMO_MODEL_ID, input: 'Hi', store: false, max_output_tokens: 1 }));
    expect(ok.status).toBe(200);
  });
});
