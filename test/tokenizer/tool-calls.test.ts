// Tool calls out of a streamed Qwen3 answer, cut at every possible point: the parts must always add up
// to the same content, names and argument text, and no call text may leak into content.
import { describe, expect, it } from 'vitest';
import { ToolCallParser, type ToolCallPart } from '../../src/tokenizer/tool-calls.js';

function parseIn(pieces: string[]) {
  const parser = new ToolCallParser();
  const parts: ToolCallPart[] = [];
  for (const p of pieces) parts.push(...parser.push(p));
  parts.push(...parser.flush());
  const calls: { name: string; args: string; ended: boolean }[] = [];
  let content = '';
  for (const p of parts) {
    if (p.type === 'text') content += p.text;
    else if (p.type === 'call') calls[p.index] = { name: p.name, args: '', ended: false };
    else if (p.type === 'arguments') calls[p.index].args += p.text;
    else calls[p.index].ended = true;
  }
  return { content, calls, parts };
}

/** Every split of `text` into two pieces, and into single characters. */
function splits(text: string): string[][] {
  const out = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const TWO_CALLS =
  'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "nested": {"a": [1, {"b": "}"}]}}}\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>';

describe('ToolCallParser', () => {
  it('finds calls and content wherever the stream is cut', () => {
    for (const pieces of splits(TWO_CALLS)) {
      const r = parseIn(pieces);
      expect(r.content).toBe('Let me check.');
      expect(r.calls).toEqual([
        { name: 'get_weather', args: '{"city": "Paris", "nested": {"a": [1, {"b": "}"}]}}', ended: true },
        { name: 'add', args: '{"a": 1, "b": 2}', ended: true },
      ]);
    }
  });

  it('releases argument text as it arrives (held only from the last "}")', () => {
    const parser = new ToolCallParser();
    const parts = parser.push('<tool_call>\n{"name": "f", "arguments": {"q": "long text so far');
    expect(parts).toEqual([
      { type: 'call', index: 0, name: 'f' },
      { type: 'arguments', index: 0, text: '{"q": "long text so far' },
    ]);
  });

  it('leaves text without calls alone, whitespace included', () => {
    for (const pieces of splits('A plain answer with <tool> and </tool_call> tags.\n\n')) expect(parseIn(pieces)).toMatchObject({ content: 'A plain answer with <tool> and </tool_call> tags.\n\n', calls: [] });
  });

  it('keeps a cut-off call with the arguments it has', () => {
    const r = parseIn(['<tool_call>\n{"name": "f", "arguments": {"q": "ab']);
    expect(r.calls).toEqual([{ name: 'f', args: '{"q": "ab', ended: false }]);
    expect(r.content).toBe('');
  });

  it('a tag that never becomes a call is text', () => {
    expect(parseIn(['<tool_call>not json</tool_call> after']).content).toBe('<tool_call>not json</tool_call> after');
  });
});
