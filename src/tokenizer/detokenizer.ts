// Incremental detokenization of a growing token sequence. Byte-level BPE tokens are raw bytes, and a
// multi-byte UTF-8 character (é, 中, 👍, each part of a ZWJ emoji) is often split across two or more
// tokens, so decoding token by token would print U+FFFD halves. This feeds the tokens' bytes through a
// streaming UTF-8 decoder instead: a character is emitted once, whole, when its last byte arrives; bytes
// that can never form a character become U+FFFD at once, exactly where decoding the whole sequence
// puts them. Hence the deltas always concatenate to decode(all tokens), and no prompt context is needed
// (byte-level BPE has no SentencePiece-style leading-space rules).

/** What the detokenizer needs from a tokenizer. */
export interface TokenByteSource {
  tokenBytes(id: number): Uint8Array;
  isSpecialToken(id: number): boolean;
}

export interface DetokenizerOptions {
  /** Leave special tokens (<|im_end|>, ...) out of the text, as decode(..., skipSpecialTokens) does. Default true. */
  skipSpecialTokens?: boolean;
}

export class IncrementalDetokenizer {
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly tokens: TokenByteSource,
    options: DetokenizerOptions = {},
  ) {
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
  }

  /** Appends one token; returns the text it completes (often '', or more than the token's own text). */
  push(id: number): string {
    if (this.skipSpecialTokens && this.tokens.isSpecialToken(id)) return '';
    return this.decoder.decode(this.tokens.tokenBytes(id), { stream: true });
  }

  /** Appends several tokens (a prefill echo, a speculative batch); returns the text they complete. */
  pushAll(ids: readonly number[]): string {
    let text = '';
    for (const id of ids) text += this.push(id);
    return text;
  }

  /**
   * Ends the sequence: bytes still waiting for the rest of a character become U+FFFD, as a
   * whole-sequence decode shows them. The detokenizer can then start a new sequence.
   */
  flush(): string {
    return this.decoder.decode();
  }
}
