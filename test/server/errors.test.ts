// Errors: every class surfaces through the official client as its own error type, in OpenAI's error
// object; and a table of malformed bodies, each answered with a 4xx error while the server stays up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { type APIError } from 'openai';
import { DEMO_MODEL_ID, loadDemoModel, postRaw, startServer, type TestServer } from './fixture.js';
import type { Model } from '../../src/index.js';
import type { ServedModel } from '../../src/server/context.js';

let model: Model;
let server: TestServer;
let client: OpenAI;
const user = [{ role: 'user' as const, content: 'Hi' }];

beforeAll(async () => {
  ({ model } = await loadDemoModel());
  server = await startServer({ model, bodyLimit: 256 * 1024 });
  client = server.client();
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

/** Runs `call`, expecting it to throw the SDK error class `type`; returns the error. */
async function expectApiError<E extends APIError>(call: () => Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as E;
  }
  throw new Error(`expected ${type.name}`);
}

describe('error classes through the OpenAI client', () => {
  it('400 BadRequestError for an out-of-range parameter, naming it', async () => {
    const e = await expectApiError(
      () => client.chat.completions.create({ model: DEMO_MODEL_ID, messages: user, temperature: 5 }),
      OpenAI.BadRequestError,
    );
    expect(e.status).toBe(400);
    expect(e.error).toMatchObject({ type: 'invalid_request_error', param: 'temperature' });
  });

  it('400 with context_length_exceeded for a prompt longer than the context', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(2000);
    const e = await expectApiError(
      () => client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [{ role: 'user', content: long }], max_tokens: 4 }),
      OpenAI.BadRequestError,
    );
    expect(e.code).toBe('context_length_exceeded');
    expect(e.message).toMatch(/context length/);
    const tooMany = await expectApiError(
      () => client.chat.completions.create({ model: DEMO_MODEL_ID, messages: user, max_tokens: 100_000 }),
      OpenAI.BadRequestError,
    );
    expect(tooMany.param).toBe('max_tokens');
  });

  it('404 NotFoundError for an unknown model and an unknown route', async () => {
    const e = await expectApiError(() => client.chat.completions.create({ model: 'gpt-4o', messages: user }), OpenAI.NotFoundError);
    expect(e.code).toBe('model_not_found');
    await expectApiError(() => client.models.retrieve('gpt-4o'), OpenAI.NotFoundError);
    await expectApiError(() => client.audio.speech.create({ model: DEMO_MODEL_ID, input: 'x', voice: 'alloy' }), OpenAI.NotFoundError);
  });

  it('413 for a body over the limit', async () => {
    const e = await expectApiError(
      () => client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] }),
      OpenAI.APIError,
    );
    expect(e.status).toBe(413);
    expect(e.error).toMatchObject({ type: 'invalid_request_error' });
  });

  it('500 InternalServerError for a real fault, without internals', async () => {
    const broken = await startServer({
      model: {
        ...modelFacade(model),
        generate: () => {
          throw new Error('secret detail at /home/someone/paralon/src/engine.ts:42');
        },
      },
    });
    const e = await expectApiError(
      () => broken.client().chat.completions.create({ model: DEMO_MODEL_ID, messages: user }),
      OpenAI.InternalServerError,
    );
    expect(e.status).toBe(500);
    expect(e.message).not.toMatch(/secret|home|engine\.ts/);
    expect(e.error).toMatchObject({ type: 'server_error' });
    await broken.close();
  });

  it('503 while the model loads: /health says loading, /v1 says try again', async () => {
    const loading = await startServer({ model: new Promise<ServedModel>(() => {}) });
    const health = await fetch(loading.url('/health'));
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'loading', model: DEMO_MODEL_ID });
    const e = await expectApiError(
      () => loading.client().chat.completions.create({ model: DEMO_MODEL_ID, messages: user }),
      OpenAI.InternalServerError,
    );
    expect(e.status).toBe(503);
    expect(e.code).toBe('model_loading');
    await loading.close();
  });
});

/** The real model's methods bound, to build fakes that differ in one method. */
function modelFacade(m: Model): ServedModel {
  return {
    contextLength: m.contextLength,
    task: m.task,
    tokenizer: m.tokenizer,
    tokenize: (input) => m.tokenize(input),
    detokenize: (ids) => m.detokenize(ids),
    embed: (inputs, options) => m.embed(inputs, options),
    prepareChat: (messages, options) => m.prepareChat(messages, options),
    generate: (prompt, options, call) => m.generate(prompt, options, call),
    stats: () => m.stats(),
  };
}

// [description, route, body (object → JSON, string → sent as is), extra headers]
type Case = [string, '/v1/chat/completions' | '/v1/completions', unknown, Record<string, string>?];
const chat = (fields: Record<string, unknown>) => ({ model: DEMO_MODEL_ID, messages: user, max_tokens: 2, ...fields });
const msg = (message: unknown) => ({ model: DEMO_MODEL_ID, messages: [message] });
const text = (fields: Record<string, unknown>) => ({ model: DEMO_MODEL_ID, prompt: 'Hi', max_tokens: 2, ...fields });
const C = '/v1/chat/completions' as const;
const T = '/v1/completions' as const;

const MALFORMED: Case[] = [
  ['truncated JSON', C, '{"model": "paralon-demo", "messages": ['],
  ['empty body', C, ''],
  ['JSON null', C, 'null'],
  ['JSON array', C, '[]'],
  ['JSON string', C, '"hello"'],
  ['JSON number', C, '42'],
  ['trailing garbage', C, JSON.stringify(chat({})) + 'x'],
  ['prototype pollution', C, '{"model":"paralon-demo","messages":[{"role":"user","content":"x"}],"__proto__":{"admin":true}}'],
  ['empty object', C, {}],
  ['no messages', C, { model: DEMO_MODEL_ID }],
  ['no model', C, { messages: user }],
  ['model not a string', C, chat({ model: 5 })],
  ['model empty', C, chat({ model: '' })],
  ['unknown model', C, chat({ model: 'gpt-4' })],
  ['messages empty', C, chat({ messages: [] })],
  ['messages a string', C, chat({ messages: 'hi' })],
  ['message null', C, msg(null)],
  ['message empty object', C, msg({})],
  ['message without content', C, msg({ role: 'user' })],
  ['unknown role', C, msg({ role: 'robot', content: 'x' })],
  ['tool message answering no call', C, msg({ role: 'tool', content: 'x', tool_call_id: 'a' })],
  ['tool message without tool_call_id', C, chat({ messages: [...user, { role: 'tool', content: 'x' }] })],
  ['role a number', C, msg({ role: 5, content: 'x' })],
  ['content a number', C, msg({ role: 'user', content: 5 })],
  ['content null', C, msg({ role: 'user', content: null })],
  ['image content part', C, msg({ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] })],
  ['text part without text', C, msg({ role: 'user', content: [{ type: 'text' }] })],
  ['text part with a number', C, msg({ role: 'user', content: [{ type: 'text', text: 5 }] })],
  ['tool_calls on a user message', C, msg({ role: 'user', content: 'x', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } }] })],
  ['assistant message with neither content nor calls', C, chat({ messages: [...user, { role: 'assistant', content: null }, ...user] })],
  ['temperature a string', C, chat({ temperature: 'hot' })],
  ['temperature negative', C, chat({ temperature: -1 })],
  ['temperature too high', C, chat({ temperature: 3 })],
  ['top_p zero', C, chat({ top_p: 0 })],
  ['top_p above one', C, chat({ top_p: 1.5 })],
  ['max_tokens zero', C, chat({ max_tokens: 0 })],
  ['max_tokens fractional', C, chat({ max_tokens: 1.5 })],
  ['max_tokens a string', C, chat({ max_tokens: '10' })],
  ['max_tokens beyond the context', C, chat({ max_tokens: 1_000_000_000 })],
  ['max_completion_tokens negative', C, chat({ max_completion_tokens: -5 })],
  ['n zero', C, chat({ n: 0 })],
  ['n huge', C, chat({ n: 1000 })],
  ['stop a number', C, chat({ stop: 5 })],
  ['stop numbers', C, chat({ stop: [1, 2] })],
  ['stop empty string', C, chat({ stop: [''] })],
  ['too many stops', C, chat({ stop: Array.from({ length: 20 }, (_, i) => `s${i}`) })],
  ['stream a string', C, chat({ stream: 'yes' })],
  ['include_usage a string', C, chat({ stream: true, stream_options: { include_usage: 'yes' } })],
  ['seed negative', C, chat({ seed: -1 })],
  ['seed a string', C, chat({ seed: 'abc' })],
  ['logprobs a string', C, chat({ logprobs: 'true' })],
  ['top_logprobs too many', C, chat({ logprobs: true, top_logprobs: 50 })],
  ['top_logprobs without logprobs', C, chat({ top_logprobs: 3 })],
  ['presence_penalty too high', C, chat({ presence_penalty: 3 })],
  ['frequency_penalty too low', C, chat({ frequency_penalty: -3 })],
  ['repetition_penalty zero', C, chat({ repetition_penalty: 0 })],
  ['top_k below -1', C, chat({ top_k: -2 })],
  ['min_p above one', C, chat({ min_p: 2 })],
  ['tool parameters not a JSON Schema', C, chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'nope' } } }] })],
  ['tool name with spaces', C, chat({ tools: [{ type: 'function', function: { name: 'get weather' } }] })],
  ['tool of another type', C, chat({ tools: [{ type: 'code_interpreter' }] })],
  ['tool_choice naming an unknown function', C, chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } })],
  ['tool_choice required without tools', C, chat({ tool_choice: 'required' })],
  ['tool_choice an unknown string', C, chat({ tool_choice: 'always' })],
  ['response_format of an unknown type', C, chat({ response_format: { type: 'yaml' } })],
  ['response_format schema not a JSON Schema', C, chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', required: 'a' } } } })],
  ['response_format json_schema without a name', C, chat({ response_format: { type: 'json_schema', json_schema: { schema: { type: 'object' } } } })],
  ['enable_thinking a string', C, chat({ chat_template_kwargs: { enable_thinking: 'no' } })],
  ['unknown template kwarg', C, chat({ chat_template_kwargs: { foo: 1 } })],
  ['deeply nested messages', C, `{"model":"paralon-demo","messages":${'['.repeat(5000)}${']'.repeat(5000)}}`],
  ['plain-text content type', C, JSON.stringify(chat({})), { 'content-type': 'text/plain' }],
  ['body over the limit', C, JSON.stringify(chat({ messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] }))],
  ['completions without prompt', T, { model: DEMO_MODEL_ID }],
  ['prompt a number', T, text({ prompt: 5 })],
  ['prompt mixed array', T, text({ prompt: [1, 'a'] })],
  ['prompt empty array', T, text({ prompt: [] })],
  ['prompt token outside the vocabulary', T, text({ prompt: [999_999_999] })],
  ['prompt negative token', T, text({ prompt: [-1] })],
  ['completion logprobs too many', T, text({ logprobs: 50 })],
  ['prompt_logprobs too many', T, text({ prompt_logprobs: 50 })],
  ['prompt_logprobs on a stream', T, text({ prompt_logprobs: 1, stream: true })],
  ['max_tokens zero without scoring the prompt', T, text({ max_tokens: 0 })],
  ['chat prompt_logprobs negative', C, chat({ prompt_logprobs: -1 })],
  ['unsupported suffix', T, text({ suffix: 'end' })],
  ['empty prompt string', T, text({ prompt: '' })],
];

describe('malformed bodies', () => {
  it('has at least 40 cases', () => expect(MALFORMED.length).toBeGreaterThanOrEqual(40));

  it.each(MALFORMED)('%s → 4xx OpenAI error', async (_name, route, body, headers) => {
    const res = await postRaw(server.url(route), typeof body === 'string' ? body : JSON.stringify(body), headers);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.json?.error).toBeDefined();
    const error = res.json!.error!;
    expect(typeof error.message).toBe('string');
    expect(typeof error.type).toBe('string');
    expect(error.param === null || typeof error.param === 'string').toBe(true);
    expect(error.code === null || typeof error.code === 'string').toBe(true);
    expect(Object.keys(res.json!)).toEqual(['error']);
  });

  it('stays up and serves after all of them', async () => {
    expect((await fetch(server.url('/health'))).status).toBe(200);
    const r = await client.chat.completions.create({ model: DEMO_MODEL_ID, messages: user, max_tokens: 2 });
    expect(r.choices).toHaveLength(1);
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
  });
});
