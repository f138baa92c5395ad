// The engine's TokenLogprob → OpenAI's two logprob shapes. JSON has no -Infinity: a token the sampler
// ruled out (probability 0) is reported as -9999, as OpenAI does.
import type { TokenLogprob } from '../engine/types.js';
import type { ChatTokenLogprob } from './schemas/chat.js';
import type { CompletionLogprobs } from './schemas/completions.js';

const finite = (logprob: number) => (Number.isFinite(logprob) ? logprob : -9999);

/** Chat completions: one object per token with its alternatives. */
export function chatLogprobs(logprobs: readonly TokenLogprob[]): ChatTokenLogprob[] {
  return logprobs.map((lp) => ({
    token: lp.token,
    logprob: finite(lp.logprob),
    bytes: lp.bytes,
    top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: finite(t.logprob), bytes: t.bytes })),
  }));
}

/**
 * Text completions: parallel arrays; `text_offset` is each token's character offset in the choice's
 * text (echoed prompt included), `top_logprobs` maps alternative texts to logprobs.
 */
export class CompletionLogprobsBuilder {
  readonly result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };

  /** Appends the tokens of one delta, whose text starts at character `offset` of the choice's text. */
  append(logprobs: readonly TokenLogprob[], offset: number): CompletionLogprobs {
    const part: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    let at = offset;
    for (const lp of logprobs) {
      // No prototype: a token may be spelled "__proto__".
      const top: Record<string, number> = Object.create(null);
      for (const t of lp.top) if (!(t.token in top)) top[t.token] = finite(t.logprob);
      part.tokens.push(lp.token);
      part.token_logprobs.push(finite(lp.logprob));
      part.top_logprobs.push(top);
      part.text_offset.push(at);
      at += lp.token.length;
    }
    this.result.tokens.push(...part.tokens);
    this.result.token_logprobs.push(...part.token_logprobs);
    this.result.top_logprobs.push(...part.top_logprobs);
    this.result.text_offset.push(...part.text_offset);
    return part;
  }
}
