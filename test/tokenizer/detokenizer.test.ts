import { beforeAll, describe, expect, it } from 'vitest';
import { IncrementalDetokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { QWEN3_REFERENCE, loadQwen3Tokenizer, rng } from './qwen3.js';

let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadQwen3Tokenizer();
});

/** Streams ids one at a time; returns every delta, the flush last. */
function stream(ids: number[], skipSpecialTokens: boolean, detok = new IncrementalDetokenizer(tok, { skipSpecialTokens })) {
  const deltas = ids.map((id) => detok.push(id));
  deltas.push(detok.flush());
  return deltas;
}

// Characters that byte-level BPE splits across tokens (3- and 4-byte UTF-8, ZWJ and flag sequences,
// combining marks), mixed with ASCII, whitespace runs and special-token text.
const PIECES = [
  'a', 'Z', ' ', '  ', '\n', '\n\n', '\t', 'the', ' word', '0', '42', '.', '{', '"', "'s",
  'é', 'ß', 'Ω', 'ж', 'ע', 'ب', 'क्ष', '中', '文', '語', 'の', '한', 'ไ', '€', '∑', '≠',
  '😀', '👍🏽', '🇫🇷', '👨‍👩‍👧', '🏳️‍🌈', '𓀀', '𝄞', '🫠', 'ꙮ', 'e\u0301', '\u200d', '\ufeff',
  '<|im_end|>', '<think>', '</think>', '<|endoftext|>',
];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function randomText(next: () => number): string {
  let s = '';
  const n = 1 + Math.floor(next() * 40);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

describe('IncrementalDetokenizer', () => {
  it('emits a split multi-byte character once, whole, when its last byte arrives', () => {
    const ids = tok.encode('x𓀀y');
    expect(ids.length).toBe(5); // x, three pieces of 𓀀, y
    expect(stream(ids, true)).toEqual(['x', '', '', '𓀀', 'y', '']);
  });

  it('matches decode() of the whole sequence on random texts, never emitting U+FFFD', () => {
    const next = rng(1);
    for (let trial = 0; trial < 300; trial++) {
      const ids = tok.encode(randomText(next));
      for (const skip of [true, false]) {
        const deltas = stream(ids, skip);
        const full = tok.decode(ids, { skipSpecialTokens: skip });
        expect(deltas.join(''), JSON.stringify(ids)).toBe(full);
        for (const d of deltas) {
          expect(d.includes('\uFFFD'), JSON.stringify({ ids, d })).toBe(false);
          expect(LONE_SURROGATE.test(d)).toBe(false); // never half a surrogate pair
        }
      }
    }
  });

  it('matches decode() on random id sequences and on slices that start or end mid-character', () => {
    const next = rng(2);
    const sequences: number[][] = QWEN3_REFERENCE.decodings.map((d) => d.ids);
    for (let trial = 0; trial < 300; trial++) {
      if (trial % 2 === 0) {
        sequences.push(Array.from({ length: 1 + Math.floor(next() * 60) }, () => Math.floor(next() * tok.vocabSize)));
      } else {
        const ids = tok.encode(randomText(next));
        const a = Math.floor(next() * ids.length);
        sequences.push(ids.slice(a, a + 1 + Math.floor(next() * (ids.length - a))));
      }
    }
    for (const ids of sequences) {
      for (const skip of [true, false]) {
        expect(stream(ids, skip).join(''), JSON.stringify(ids)).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
      }
    }
  });

  it('agrees with the Rust reference decoder', () => {
    for (const { ids, text, textSkipSpecial } of QWEN3_REFERENCE.decodings) {
      expect(stream(ids, false).join('')).toBe(text);
      expect(stream(ids, true).join('')).toBe(textSkipSpecial);
    }
  });

  it('shows an incomplete character at the end as U+FFFD only on flush, then starts afresh', () => {
    const detok = new IncrementalDetokenizer(tok);
    const [first, second] = tok.encode('𓀀');
    expect(detok.push(first)).toBe('');
    expect(detok.push(second)).toBe('');
    expect(detok.flush()).toBe('\uFFFD');
    expect(detok.pushAll(tok.encode('ok 👍🏽'))).toBe('ok 👍🏽');
    expect(detok.flush()).toBe('');
  });

  it('keeps a leading byte order mark, as decode() does', () => {
    const ids = tok.encode('\ufeffhi');
    expect(stream(ids, true).join('')).toBe('\ufeffhi');
  });
});
