/** Restricts the tokens one request may sample next (a grammar, a tool-call format, a ban list). */
export interface TokenConstraint {
  /** Allowed-token bitmask for the next token: Int32Array of ceil(vocab/32) words, bit (t & 31) of word
   *  (t >> 5) set = token t allowed; null = unconstrained this step. May return a promise (computed
   *  overlapped with the device step; other requests are not stalled). */
  nextMask(): Int32Array | null | Promise<Int32Array | null>;
  /** Advances past the sampled token. false = rejected (the request ends with an error). */
  accept(token: number): boolean;
  /** True once the constraint is complete and only an end of sequence may follow. */
  isTerminated(): boolean;
  dispose(): void;
}
