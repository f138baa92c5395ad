// Qwen3's own template renders tools, assistant tool calls (content null) and tool results.
import { describe, expect, it } from 'vitest';
import type { ChatMessage, Tool } from '../../src/engine/types.js';
import { loadQwen3Tokenizer } from './qwen3.js';

const tools: Tool[] = [{ type: 'function', function: { name: 'add', description: 'Adds', parameters: { type: 'object', properties: { a: { type: 'integer' } } } } }];

describe('chat template with tools', () => {
  it('describes the tools, renders the call and its result', async () => {
    const tokenizer = await loadQwen3Tokenizer();
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Add 1.' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'add', arguments: '{"a": 1}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '2' },
    ];
    const { prompt } = tokenizer.encodeChat(messages, { tools, enableThinking: false });
    expect(prompt).toContain('<|im_start|>system\nBe brief.\n\n# Tools\n');
    expect(prompt).toContain('<tools>\n{"type": "function", "function": {"name": "add", "description": "Adds", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}\n</tools>');
    expect(prompt).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>\n');
    expect(prompt).toContain('<|im_start|>user\n<tool_response>\n2\n</tool_response><|im_end|>\n');
    expect(prompt.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
  });

  it('without tools, renders as before', async () => {
    const tokenizer = await loadQwen3Tokenizer();
    const { prompt } = tokenizer.encodeChat([{ role: 'user', content: 'Hi' }], { tools: [] });
    expect(prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });
});
