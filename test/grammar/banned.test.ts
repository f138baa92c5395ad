// tool_choice 'none': a fixed mask that bans the call tag and the logits' padding ids, nothing else.
import { describe, expect, it } from 'vitest';
import { BannedTokens } from '../../src/grammar/banned.js';

describe('BannedTokens', () => {
  it('allows every vocabulary token but the banned ones, and no padding id', () => {
    // Awkward sizes: a vocabulary ending mid-word, logits padded past it.
    const width = 1_003;
    const vocab = 997;
    const c = new BannedTokens(width, vocab, [0, 31, 32, 500, 996]);
    const mask = c.nextMask();
    expect(mask.length).toBe(Math.ceil(width / 32));
    for (let t = 0; t < width; t++) {
      const allowed = (mask[t >> 5] & (1 << (t & 31))) !== 0;
      expect(allowed, `token ${t}`).toBe(t < vocab && ![0, 31, 32, 500, 996].includes(t));
      expect(c.accept(t)).toBe(allowed);
    }
    expect(c.isTerminated()).toBe(false);
  });
});
