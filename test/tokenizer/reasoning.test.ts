import { beforeAll, describe, expect, it } from 'vitest';
import {
  ReasoningSplitter,
  reasoningStartForPrompt,
  type ReasoningStart,
  type Tokenizer,
} from '../../src/tokenizer/index.js';
import { loadQwen3Tokenizer, rng } from './qwen3.js';

function split(deltas: string[], start: ReasoningStart = 'detect') {
  const s = new ReasoningSplitter(start);
  let reasoning = '';
  let content = '';
  for (const d of [...deltas.map((x) => s.push(x)), s.flush()]) {
    reasoning += d.reasoning;
    content += d.content;
  }
  return { reasoning, content };
}

/** Every way of cutting `text` at up to three places, plus character by character. */
function* cuts(text: string): Generator<string[]> {
  yield [...text];
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      yield [text.slice(0, i), text.slice(i, j), text.slice(j)];
    }
  }
}

describe('ReasoningSplitter', () => {
  it('splits a Qwen3 answer into reasoning and content, dropping the format newlines', () => {
    const out = '<think>\nThe user greets me.\n\nI should greet back.\n</think>\n\nHello! 👋\n\nHow can I help?';
    const expected = { reasoning: 'The user greets me.\n\nI should greet back.', content: 'Hello! 👋\n\nHow can I help?' };
    for (const deltas of cuts(out)) expect(split(deltas), JSON.stringify(deltas)).toEqual(expected);
  });

  it('streams reasoning before the block closes, holding only a possible tag start and newlines', () => {
    const s = new ReasoningSplitter();
    expect(s.push('<thi')).toEqual({ reasoning: '', content: '' });
    expect(s.push('nk>\nStep one.\n')).toEqual({ reasoning: 'Step one.', content: '' });
    expect(s.push('Step two.</th')).toEqual({ reasoning: '\nStep two.', content: '' });
    expect(s.push('ink>\n\nAnswer')).toEqual({ reasoning: '', content: 'Answer' });
    expect(s.push('\n</think> stays')).toEqual({ reasoning: '', content: '\n</think> stays' });
    expect(s.flush()).toEqual({ reasoning: '', content: '' });
  });

  it('gives all the output to content when there is no think block', () => {
    const text = '  No reasoning here, <think> later is content.\n';
    for (const deltas of cuts(text)) expect(split(deltas)).toEqual({ reasoning: '', content: text });
    expect(split(['<th'])).toEqual({ reasoning: '', content: '<th' });
    expect(split(['<think>x</think>y'], 'content')).toEqual({ reasoning: '', content: '<think>x</think>y' });
  });

  it('continues a block the prompt opened', () => {
    const text = 'Thinking in the prompt block.\n</think>\n\nDone.';
    for (const deltas of cuts(text)) {
      expect(split(deltas, 'reasoning')).toEqual({ reasoning: 'Thinking in the prompt block.', content: 'Done.' });
    }
  });

  it('keeps an unclosed block as reasoning, held tag text included', () => {
    expect(split(['<think>\nran out of tokens\n\n'])).toEqual({ reasoning: 'ran out of tokens', content: '' });
    expect(split(['<think>\nalmost\n</thi'])).toEqual({ reasoning: 'almost\n</thi', content: '' });
    expect(split(['<think>\n\n</think>\n\n'])).toEqual({ reasoning: '', content: '' });
  });

  it('is independent of delta boundaries on random outputs', () => {
    const next = rng(4);
    const parts = ['<think>', '</think>', '\n', '\n\n', 'a', ' b', '<', '</', 'think', '>', '😀', '/'];
    for (let trial = 0; trial < 2000; trial++) {
      const text = Array.from({ length: Math.floor(next() * 12) }, () => parts[Math.floor(next() * parts.length)]).join('');
      const whole = split([text]);
      const deltas: string[] = [];
      for (let i = 0; i < text.length; ) {
        const n = 1 + Math.floor(next() * 4);
        deltas.push(text.slice(i, i + n));
        i += n;
      }
      expect(split(deltas), JSON.stringify(deltas)).toEqual(whole);
      // Nothing is lost but the tags and the newlines around the block.
      const stripped = text.replace(/<think>|<\/think>|\n/g, '');
      expect((whole.reasoning + whole.content).replace(/<think>|<\/think>|\n/g, '')).toBe(stripped);
    }
  });
});

describe('reasoningStartForPrompt', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadQwen3Tokenizer();
  });

  it('reads the start state from the rendered Qwen3 prompt', () => {
    const messages = [{ role: 'user' as const, content: 'Hi <think>' }];
    expect(reasoningStartForPrompt(tok.chatTemplate!.render(messages))).toBe('detect');
    expect(reasoningStartForPrompt(tok.chatTemplate!.render(messages, { enableThinking: false }))).toBe('content');
    expect(reasoningStartForPrompt('<|im_start|>assistant\n<think>\n')).toBe('reasoning');
  });
});
