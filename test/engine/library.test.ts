// The library API end to end, as an application uses it: write the demo model, loadModel, stream a
// chat reply with `for await`, then a raw completion, stats and dispose.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, writeDemoModel, type ChatEvent, type ChatMessage, type GenerationEvent, type Model } from '../../src/index.js';
import { tempDir } from './fixture.js';

describe('library API', () => {
  const dir = path.join(tempDir('library'), 'Demo-Qwen3');
  let model: Model;

  beforeAll(async () => {
    writeDemoModel(dir);
    model = await loadModel(dir, { device: 'cpu', threads: 1, kvCacheMemory: 16 * 2 ** 20, maxModelLen: 512 });
  });
  afterAll(() => {
    model?.dispose();
    rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('loads a model directory and describes it', () => {
    expect(model.id).toBe('demo-qwen3');
    expect(model.device.name).toBe('cpu');
    expect(model.config).toMatchObject({ numLayers: 4, vocabSize: 151_936 });
    expect(model.contextLength).toBe(512);
    expect(model.kvCacheTokens).toBeGreaterThanOrEqual(512);
    expect(model.idle).toBe(true);
  });

  it('streams a chat reply', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Write a haiku about the sea.' },
    ];
    let text = '';
    let done: Extract<ChatEvent, { type: 'done' }> | null = null;
    for await (const event of model.chat(messages, { maxTokens: 24, seed: 1, enableThinking: false })) {
      if (event.type === 'delta') text += event.text;
      else if (event.type === 'done') done = event;
    }
    expect(done).not.toBeNull();
    expect(['stop', 'length']).toContain(done!.finishReason);
    const prompt = model.encodeChat(messages, { enableThinking: false });
    expect(done!.usage.promptTokens).toBe(prompt.length);
    expect(done!.usage.completionTokens).toBeGreaterThan(0);
    expect(done!.usage.completionTokens).toBeLessThanOrEqual(24);
    expect(done!.usage.totalTokens).toBe(prompt.length + done!.usage.completionTokens);
    expect(typeof text).toBe('string');
    // The prompt is the model's own chat template.
    const rendered = model.renderChat(messages, { enableThinking: false });
    expect(rendered).toContain('<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n');
    expect(model.tokenizer.encode(rendered, { addSpecialTokens: false })).toEqual(prompt);

    // The same seed gives the same reply.
    let again = '';
    for await (const event of model.chat(messages, { maxTokens: 24, seed: 1, enableThinking: false })) if (event.type === 'delta') again += event.text;
    expect(again).toBe(text);
  });

  it('completes raw text and counts what it did', async () => {
    const before = model.stats();
    const events: GenerationEvent[] = [];
    for await (const event of model.complete('The capital of France is', { maxTokens: 5, temperature: 0, ignoreEos: true })) events.push(event);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ type: 'done', finishReason: 'length', usage: { completionTokens: 5 } });
    expect(events.slice(0, -1).every((e) => e.type === 'delta')).toBe(true);
    const after = model.stats();
    expect(after.engine.steps - before.engine.steps).toBe(5);
    expect(after.kv.usedBlocks).toBe(0);
    expect(model.idle).toBe(true);
  });
});
