// A TokenConstraint that only bans a few tokens (tool_choice 'none' bans the call tag's token): one
// fixed mask, no worker needed. Ids past the tokenizer's vocabulary (logits padding) are banned too.
import { maskWords, type TokenConstraint } from '../engine/constraint.js';

export class BannedTokens implements TokenConstraint {
  readonly #mask: Int32Array;

  constructor(logitsWidth: number, numVocabTokens: number, banned: readonly number[]) {
    this.#mask = new Int32Array(maskWords(logitsWidth));
    for (let word = 0; word * 32 < numVocabTokens; word++) {
      const valid = Math.min(32, numVocabTokens - word * 32);
      this.#mask[word] = valid === 32 ? -1 : (1 << valid) - 1;
    }
    for (const t of banned) if (t >= 0 && t < logitsWidth) this.#mask[t >> 5] &= ~(1 << (t & 31));
  }

  nextMask(): Int32Array {
    return this.#mask;
  }

  accept(token: number): boolean {
    return Number.isInteger(token) && token >= 0 && (this.#mask[token >> 5] & (1 << (token & 31))) !== 0;
  }

  isTerminated(): boolean {
    return false;
  }

  dispose(): void {}
}
