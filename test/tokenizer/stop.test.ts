import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/tokenizer/index.js';
import { rng } from './qwen3.js';

/** Feeds the deltas; returns the emitted text (flushed when no stop matched) and the stop. */
function run(stops: string[], deltas: string[]) {
  const m = new StopMatcher(stops);
  let text = '';
  for (const d of deltas) {
    const r = m.push(d);
    text += r.text;
    if (r.stop !== null) return { text, stop: r.stop as string | null };
  }
  return { text: text + m.flush(), stop: null as string | null };
}

/**
 * Reference: scan the whole text one character at a time; the first position where some stop ends
 * wins, the longest stop ending there (earliest start) breaking ties.
 */
function reference(stops: string[], text: string) {
  for (let end = 1; end <= text.length; end++) {
    const prefix = text.slice(0, end);
    const hits = stops.filter((s) => s.length > 0 && prefix.endsWith(s)).sort((a, b) => b.length - a.length);
    if (hits.length > 0) return { text: text.slice(0, end - hits[0].length), stop: hits[0] as string | null };
  }
  return { text, stop: null as string | null };
}

function randomSplit(text: string, next: () => number): string[] {
  const deltas: string[] = [];
  let i = 0;
  while (i < text.length) {
    const n = Math.floor(next() * 5); // empty deltas included
    deltas.push(text.slice(i, i + n));
    i += n;
  }
  return deltas;
}

describe('StopMatcher', () => {
  it('finds a stop spanning deltas and never emits any of it', () => {
    const m = new StopMatcher(['</answer>']);
    expect(m.push('The result is 4.</')).toEqual({ text: 'The result is 4.', stop: null });
    expect(m.push('ans')).toEqual({ text: '', stop: null });
    expect(m.push('wer> trailing')).toEqual({ text: '', stop: '</answer>' });
    expect(m.done).toBe(true);
    expect(() => m.push('more')).toThrow(/after a stop/);
  });

  it('releases held text once it cannot start a stop, and on flush', () => {
    const m = new StopMatcher(['</answer>']);
    expect(m.push('a </an')).toEqual({ text: 'a ', stop: null });
    expect(m.push('x')).toEqual({ text: '</anx', stop: null });
    expect(m.push(' </')).toEqual({ text: ' ', stop: null });
    expect(m.flush()).toBe('</');
    expect(m.done).toBe(false);
  });

  it('keeps the stop string at the end of the text with includeStop, and passes text unmatched', () => {
    const m = new StopMatcher(['</answer>'], { includeStop: true });
    expect(m.push('4.</ans')).toEqual({ text: '4.', stop: null });
    expect(m.push('wer> trailing')).toEqual({ text: '</answer>', stop: '</answer>' });
    const early = new StopMatcher(['</answer>']);
    expect(early.push('a </ans')).toEqual({ text: 'a ', stop: null });
    // Before min_tokens: what was held goes out with the new text, nothing matched.
    expect(early.pass('wer> b')).toBe('</answer> b');
    expect(early.push('</answer>')).toEqual({ text: '', stop: '</answer>' });
  });

  it('stops at the very start and at the very end', () => {
    expect(run(['###'], ['###rest'])).toEqual({ text: '', stop: '###' });
    expect(run(['###'], ['#', '#', '#'])).toEqual({ text: '', stop: '###' });
    expect(run(['END'], ['the ', 'EN', 'D'])).toEqual({ text: 'the ', stop: 'END' });
  });

  it('handles overlapping stops and self-overlapping prefixes', () => {
    expect(run(['aab'], ['a', 'a', 'a', 'b'])).toEqual({ text: 'a', stop: 'aab' });
    expect(run(['abc', 'bcd'], ['abcd'])).toEqual({ text: '', stop: 'abc' });
    expect(run(['bcd', 'abcde'], ['ab', 'cde'])).toEqual({ text: 'a', stop: 'bcd' });
    expect(run(['bc', 'abc'], ['abc'])).toEqual({ text: '', stop: 'abc' }); // same end: the longer one
    expect(run(['abab'], ['aba', 'bab'])).toEqual({ text: '', stop: 'abab' });
  });

  it('works on multi-byte characters and ignores empty stops', () => {
    expect(run(['👍🏽'], ['ok 👍', '🏽 no'])).toEqual({ text: 'ok ', stop: '👍🏽' });
    expect(run(['中文'], ['这是中', '国'])).toEqual({ text: '这是中国', stop: null });
    expect(run(['', 'x'], ['abc'])).toEqual({ text: 'abc', stop: null });
    expect(run([], ['a', 'b'])).toEqual({ text: 'ab', stop: null });
  });

  it('gives the same result however the text is cut into deltas', () => {
    const next = rng(3);
    const alphabet = 'aab \n';
    for (let trial = 0; trial < 3000; trial++) {
      const stops = Array.from({ length: 1 + Math.floor(next() * 3) }, () =>
        Array.from({ length: 1 + Math.floor(next() * 4) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''),
      );
      const text = Array.from({ length: Math.floor(next() * 30) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
      const expected = reference(stops, text);
      const deltas = randomSplit(text, next);
      expect(run(stops, deltas), JSON.stringify({ stops, deltas })).toEqual(expected);

      // Nothing emitted is ever taken back: every emitted prefix is a prefix of the final answer.
      const m = new StopMatcher(stops);
      let emitted = '';
      for (const d of deltas) {
        const r = m.push(d);
        emitted += r.text;
        expect(expected.text.startsWith(emitted)).toBe(true);
        if (r.stop !== null) break;
      }
    }
  });
});
