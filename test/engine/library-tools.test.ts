// The library's tools and responseFormat on the demo model (random weights): typed tool_call events
// whose arguments validate, a completion that parses, and bad input refused before anything runs.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, writeDemoModel, RequestError, type ChatEvent, type Model, type Tool } from '../../src/index.js';
import { resolveServeConfig } from '../../src/server/serve.js';
import { tempDir } from './fixture.js';

const ADD = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 }, b: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['a', 'b'], additionalProperties: false };
const tools: Tool[] = [{ type: 'function', function: { name: 'add', description: 'Adds', parameters: ADD } }];

describe('library tools and responseFormat', () => {
  const dir = path.join(tempDir('library-tools'), 'Demo');
  let model: Model;

  beforeAll(async () => {
    writeDemoModel(dir);
    model = await loadModel(dir, { device: 'cpu', threads: 1, kvCacheMemory: 16 * 2 ** 20, maxModelLen: 512, grammarWorkers: 1 });
  });
  afterAll(() => {
    model?.dispose();
    rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('model.chat with toolChoice required yields a typed tool_call event', async () => {
    const events: ChatEvent[] = [];
    for await (const e of model.chat([{ role: 'user', content: 'Add 2 and 3.' }], { tools, toolChoice: 'required', parallelToolCalls: false, maxTokens: 60, seed: 1, enableThinking: false }))
      events.push(e);
    const calls = events.filter((e) => e.type === 'tool_call');
    expect(calls).toHaveLength(1);
    const call = (calls[0] as Extract<ChatEvent, { type: 'tool_call' }>).call;
    expect(call.function.name).toBe('add');
    expect(new Ajv2020().validate(ADD, JSON.parse(call.function.arguments))).toBe(true);
    expect(events.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text).join('')).toBe('');
    expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'tool_calls' });
  });

  it('model.complete with responseFormat gives JSON that parses', async () => {
    let text = '';
    let finish = '';
    const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['ok', 'n'], additionalProperties: false };
    for await (const e of model.complete('Answer:', { responseFormat: { type: 'json_schema', json_schema: { name: 'r', schema } }, maxTokens: 40, seed: 2 }))
      if (e.type === 'delta') text += e.text;
      else finish = e.finishReason;
    expect(finish).toBe('stop');
    expect(new Ajv2020().validate(schema, JSON.parse(text))).toBe(true);
  });

  it('refuses an unknown named function before anything is queued', async () => {
    const run = async () => {
      for await (const _ of model.chat([{ role: 'user', content: 'x' }], { tools, toolChoice: { type: 'function', function: { name: 'nope' } } }));
    };
    await expect(run()).rejects.toBeInstanceOf(RequestError);
    expect(model.stats().engine).toMatchObject({ running: 0, waiting: 0 });
  });

  it('paralon serve reads --grammar-compile-timeout (seconds) and --grammar-workers', () => {
    const config = resolveServeConfig({ 'grammar-compile-timeout': '2.5', 'grammar-workers': '3' }, {});
    expect(config).toMatchObject({ grammarCompileTimeoutMs: 2500, grammarWorkers: 3 });
    expect(resolveServeConfig({}, { PARALON_GRAMMAR_COMPILE_TIMEOUT: '1' }).grammarCompileTimeoutMs).toBe(1000);
    expect(() => resolveServeConfig({ 'grammar-workers': '0' }, {})).toThrow(/grammar-workers/);
  });
});
