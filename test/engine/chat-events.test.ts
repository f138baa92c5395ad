// model.chat's typed events when tools are given: content without call text, one `tool_call` event
// per call as soon as its close tag arrives, finish reason 'tool_calls'.
import { describe, expect, it } from 'vitest';
import { chatEvents } from '../../src/engine/chat.js';
import type { ChatEvent, GenerationEvent } from '../../src/engine/types.js';

async function* script(pieces: string[], finishReason: 'stop' | 'length' = 'stop'): AsyncGenerator<GenerationEvent> {
  for (const text of pieces) yield { type: 'delta', text, tokenIds: [1] };
  yield { type: 'done', finishReason, usage: { promptTokens: 3, completionTokens: pieces.length, totalTokens: 3 + pieces.length } };
}

async function collect(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('chatEvents', () => {
  it('turns Qwen3 call blocks into tool_call events', async () => {
    const events = await collect(
      chatEvents(script(['Sure.\n<tool_', 'call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>', '\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>']), true),
    );
    const text = events.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text).join('');
    expect(text).toBe('Sure.');
    const calls = events.filter((e) => e.type === 'tool_call');
    expect(calls).toEqual([
      { type: 'tool_call', index: 0, call: { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'add', arguments: '{"a": 1}' } } },
      { type: 'tool_call', index: 1, call: { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'f', arguments: '{}' } } },
    ]);
    // The first call is reported when its close tag arrives, before the second starts.
    expect(events.findIndex((e) => e.type === 'tool_call')).toBeLessThan(events.length - 3);
    expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'tool_calls', usage: { completionTokens: 3 } });
    // Every token stays counted in some delta.
    expect(events.filter((e) => e.type === 'delta').reduce((n, e) => n + (e as { tokenIds: number[] }).tokenIds.length, 0)).toBe(3);
  });

  it('reports a call cut short by max_tokens, and keeps finish reason length', async () => {
    const events = await collect(chatEvents(script(['<tool_call>\n{"name": "add", "arguments": {"a": '], 'length'), true));
    expect(events.filter((e) => e.type === 'tool_call')).toEqual([{ type: 'tool_call', index: 0, call: expect.objectContaining({ function: { name: 'add', arguments: '{"a": ' } }) }]);
    expect(events.at(-1)).toMatchObject({ finishReason: 'length' });
  });

  it('passes text through untouched without tools', async () => {
    const events = await collect(chatEvents(script(['<tool_call>not parsed']), false));
    expect(events[0]).toMatchObject({ type: 'delta', text: '<tool_call>not parsed' });
    expect(events.at(-1)).toMatchObject({ finishReason: 'stop' });
  });
});
