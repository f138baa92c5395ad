// The engine's TokenLogprob → OpenAI's two logprob shapes. JSON has no -Infinity: a token the sampler
// ruled out (probability 0) is reported as -9999, as OpenAI does.
import type { PromptLogprobsList, TokenLogprob } from '../engine/types.js';
import type { ChatTokenLogprob } from './schemas/chat.js';
import type { CompletionLogprobs } from './schemas/completions.js';

export const finiteLogprob = (logprob: number) => (Number.isFinite(logprob) ? logprob : -9999);

/** Chat completions: one object per token with its alternatives. */
export function chatLogprobs(logprobs: readonly TokenLogprob[]): ChatTokenLogprob[] {
  return logprobs.map((lp) => ({
    token: lp.token,
    logprob: finiteLogprob(lp.logprob),
    bytes: lp.bytes,
    top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: finiteLogprob(t.logprob), bytes: t.bytes })),
  }));
}

/**
 * Text completions: parallel arrays; `text_offset` is each token's character offset in the choice's
 * text (echoed prompt included), `top_logprobs` maps alternative texts to logprobs. An echoed prompt's
 * tokens come first, the first of them with null (nothing precedes it), as OpenAI returns them.
 */
export class CompletionLogprobsBuilder {
  readonly result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };

  /**
   * Appends an echoed prompt's tokens (its text starts at offset 0) with `numTop` alternatives each;
   * a token without logprob (the first) is spelled by `tokenText` and has null in both logprob arrays.
   */
  appendPrompt(promptTokens: readonly number[], logprobs: PromptLogprobsList, tokenText: (id: number) => string, numTop: number): CompletionLogprobs {
    const part = this.#part(logprobs.map((lp, i) => lp ?? { tokenId: promptTokens[i], token: tokenText(promptTokens[i]) }), 0, numTop);
    return this.#add(part);
  }

  /** Appends the tokens of one delta, whose text starts at character `offset` of the choice's text. */
  append(logprobs: readonly TokenLogprob[], offset: number): CompletionLogprobs {
    return this.#add(this.#part(logprobs, offset, Infinity));
  }

  #part(logprobs: readonly (TokenLogprob | { tokenId: number; token: string })[], offset: number, numTop: number): CompletionLogprobs {
    const part: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    let at = offset;
    for (const lp of logprobs) {
      part.tokens.push(lp.token);
      part.text_offset.push(at);
      at += lp.token.length;
      if (!('logprob' in lp)) {
        part.token_logprobs.push(null);
        part.top_logprobs.push(null);
        continue;
      }
      // No prototype: a token may be spelled "__proto__".
      const top: Record<string, number> = Object.create(null);
      for (const t of lp.top.slice(0, numTop)) if (!(t.token in top)) top[t.token] = finiteLogprob(t.logprob);
      part.token_logprobs.push(finiteLogprob(lp.logprob));
      part.top_logprobs.push(top);
    }
    return part;
  }

  #add(part: CompletionLogprobs): CompletionLogprobs {
    this.result.tokens.push(...part.tokens);
    this.result.token_logprobs.push(...part.token_logprobs);
    this.result.top_logprobs.push(...part.top_logprobs);
    this.result.text_offset.push(...part.text_offset);
    return part;
  }
}
