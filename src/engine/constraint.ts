// The engine's hook for constrained decoding: a request may carry a TokenConstraint, whose mask the
// engine applies at sampling (the sample op's allowed-token bitmask) and which it advances with each
// sampled token. Grammars (src/grammar), tool-call formats and ban lists implement it.

/** Restricts the tokens one request may sample next (a grammar, a tool-call format, a ban list). */
export interface TokenConstraint {
  /** Allowed-token bitmask for the next token: Int32Array of ceil(vocab/32) words, bit (t & 31) of word
   *  (t >> 5) set = token t allowed; null = unconstrained this step. May return a promise: the engine
   *  must compute it overlapped with the device step and must not stall other requests of the batch. */
  nextMask(): Int32Array | null | Promise<Int32Array | null>;
  /** Advances past the token sampled for this request. false = the constraint rejects it (the request
   *  then ends with an error; should never happen when the mask was applied). */
  accept(token: number): boolean;
  /** True once the constraint is complete and only an end of sequence may follow. */
  isTerminated(): boolean;
  dispose(): void;
}

/** Words of an allowed-token bitmask over `vocab` tokens. */
export function maskWords(vocab: number): number {
  return Math.ceil(vocab / 32);
}

/** A bitmask over `vocab` tokens allowing exactly `tokens`. */
export function maskOf(vocab: number, tokens: Iterable<number>): Int32Array {
  const mask = new Int32Array(maskWords(vocab));
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`token ${t} is outside the vocabulary (0…${vocab - 1})`);
    mask[t >> 5] |= 1 << (t & 31);
  }
  return mask;
}

/** Whether `mask` allows token `t`. */
export function maskAllows(mask: Int32Array, t: number): boolean {
  return ((mask[t >> 5] >>> (t & 31)) & 1) === 1;
}
