// Splits a streamed Qwen3-style answer into reasoning and content: "<think>\n…\n</think>\n\nanswer".
// Deltas are cut anywhere, tags included ("</th" + "ink>"), so text that may be the start of a tag is
// held until the next delta settles it. Newlines around the reasoning and at the start of the answer
// are the format's own and are dropped, as Qwen3's chat template does when it reads such a turn back
// (reasoning_content.strip('\n'), content.lstrip('\n')).

/**
 * Where the output starts: 'detect' — it may open with <think> (Qwen3 with thinking on);
 * 'reasoning' — the prompt already opened the block (templates ending in "<think>\n");
 * 'content' — the prompt closed it or there is none (Qwen3 with enable_thinking=false).
 */
export type ReasoningStart = 'detect' | 'reasoning' | 'content';

export interface ReasoningTags {
  open: string;
  close: string;
}

export const QWEN3_REASONING_TAGS: ReasoningTags = { open: '<think>', close: '</think>' };

export interface ReasoningDelta {
  reasoning: string;
  content: string;
}

/** Where generation starts given the rendered prompt: from a think tag at its very end, if any. */
export function reasoningStartForPrompt(prompt: string, tags: ReasoningTags = QWEN3_REASONING_TAGS): ReasoningStart {
  const tail = prompt.trimEnd();
  if (tail.endsWith(tags.open)) return 'reasoning';
  if (tail.endsWith(tags.close)) return 'content';
  return 'detect';
}

export class ReasoningSplitter {
  private state: ReasoningStart;
  /** Text received but not yet given out (a possible tag start, newlines that may precede </think>). */
  private pending = '';
  /** At the start of the reasoning or of the answer after it, where newlines are dropped. */
  private dropLeadingNewlines: boolean;

  constructor(
    start: ReasoningStart = 'detect',
    private readonly tags: ReasoningTags = QWEN3_REASONING_TAGS,
  ) {
    this.state = start;
    this.dropLeadingNewlines = start === 'reasoning';
  }

  push(delta: string): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: '', content: '' };
    this.pending += delta;
    this.advance(out, false);
    return out;
  }

  /** The stream ended: a held possible tag start was text after all (an unclosed block stays reasoning). */
  flush(): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: '', content: '' };
    this.advance(out, true);
    return out;
  }

  private advance(out: ReasoningDelta, final: boolean): void {
    const { open, close } = this.tags;
    for (;;) {
      if (this.state === 'detect') {
        // Whitespace before the opening tag is tolerated; anything else means there is no reasoning.
        const head = this.pending.trimStart();
        if (head.startsWith(open)) {
          this.pending = head.slice(open.length);
          this.state = 'reasoning';
          this.dropLeadingNewlines = true;
          continue;
        }
        if (!final && open.startsWith(head)) return;
        this.state = 'content';
        continue;
      }

      if (this.dropLeadingNewlines) {
        this.pending = this.pending.replace(/^\n+/, '');
        if (this.pending === '') return;
        this.dropLeadingNewlines = false;
      }

      if (this.state === 'content') {
        out.content += this.pending;
        this.pending = '';
        return;
      }

      const closeAt = this.pending.indexOf(close);
      if (closeAt >= 0) {
        out.reasoning += trimTrailingNewlines(this.pending.slice(0, closeAt));
        this.pending = this.pending.slice(closeAt + close.length);
        this.state = 'content';
        this.dropLeadingNewlines = true;
        continue;
      }
      if (final) {
        out.reasoning += trimTrailingNewlines(this.pending);
        this.pending = '';
        return;
      }
      // Hold a possible start of </think> and the newlines right before it (dropped if it is one).
      let hold = partialTagStart(this.pending, close);
      while (hold > 0 && this.pending[hold - 1] === '\n') hold--;
      out.reasoning += this.pending.slice(0, hold);
      this.pending = this.pending.slice(hold);
      return;
    }
  }
}

function trimTrailingNewlines(s: string): string {
  return s.replace(/\n+$/, '');
}

/** Start of the longest suffix of `text` that is a proper prefix of `tag` (text.length if none). */
export function partialTagStart(text: string, tag: string): number {
  for (let len = Math.min(tag.length - 1, text.length); len > 0; len--) {
    if (text.endsWith(tag.slice(0, len))) return text.length - len;
  }
  return text.length;
}
