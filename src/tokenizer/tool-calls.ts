// Finds tool calls in a streamed chat answer. Qwen3 (like Hermes-style models) writes each call as
//   <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>
// with "\n" between calls. Deltas are cut anywhere, tags included, so text that may be the start of
// a tag is held until the next delta settles it; argument text is released as it arrives, except from
// its last "}" on (which may be the wrapper object's closing brace).
import { partialTagStart } from './reasoning.js';

export interface ToolCallSyntax {
  open: string;
  close: string;
  /** Between two calls (and between text and a call). */
  separator: string;
  /** The text from `open` up to the arguments' first character. */
  header(name: string): string;
  /** The text from the arguments' last character through `close`. */
  footer: string;
}

export const QWEN3_TOOL_CALLS: ToolCallSyntax = {
  open: '<tool_call>',
  close: '</tool_call>',
  separator: '\n',
  header: (name) => `<tool_call>\n{"name": ${JSON.stringify(name)}, "arguments": `,
  footer: '}\n</tool_call>',
};

export type ToolCallPart =
  | { type: 'text'; text: string }
  /** A call's name is known: the call with this index starts. */
  | { type: 'call'; index: number; name: string }
  /** More of call `index`'s arguments (JSON text; the fragments concatenate to the whole). */
  | { type: 'arguments'; index: number; text: string }
  /** Call `index` is complete (its close tag arrived). */
  | { type: 'end'; index: number };

/** `{"name": "…", "arguments": ` after the open tag; group 1 is the JSON string of the name. */
const HEADER = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;

export class ToolCallParser {
  #state: 'text' | 'header' | 'arguments' = 'text';
  #pending = '';
  #numCalls = 0;
  /** Whitespace ending the text so far: dropped if a call follows, kept otherwise. */
  #heldSpace = '';

  constructor(private readonly syntax: ToolCallSyntax = QWEN3_TOOL_CALLS) {}

  /** Calls started so far. */
  get numCalls(): number {
    return this.#numCalls;
  }

  push(delta: string): ToolCallPart[] {
    const out: ToolCallPart[] = [];
    this.#pending += delta;
    this.#advance(out, false);
    return out;
  }

  /** The stream ended: held text is released (an unfinished call keeps what it has). */
  flush(): ToolCallPart[] {
    const out: ToolCallPart[] = [];
    this.#advance(out, true);
    return out;
  }

  #text(out: ToolCallPart[], text: string, final: boolean): void {
    const all = this.#heldSpace + text;
    const body = all.trimEnd();
    this.#heldSpace = all.slice(body.length);
    if (final && this.#numCalls === 0) {
      if (all) out.push({ type: 'text', text: all });
      this.#heldSpace = '';
      return;
    }
    // Text between or after calls that is only whitespace is the format's separator, not content.
    if (body && (this.#numCalls === 0 || body.trim())) out.push({ type: 'text', text: body });
  }

  #advance(out: ToolCallPart[], final: boolean): void {
    const { open, close } = this.syntax;
    for (;;) {
      if (this.#state === 'text') {
        const at = this.#pending.indexOf(open);
        if (at >= 0) {
          this.#text(out, this.#pending.slice(0, at), false);
          this.#heldSpace = '';
          this.#pending = this.#pending.slice(at + open.length);
          this.#state = 'header';
          continue;
        }
        const hold = final ? this.#pending.length : partialTagStart(this.#pending, open);
        this.#text(out, this.#pending.slice(0, hold), final);
        this.#pending = this.#pending.slice(hold);
        return;
      }

      if (this.#state === 'header') {
        const m = HEADER.exec(this.#pending);
        // Matched up to the end of what arrived: more spacing may follow; wait for the arguments.
        if (m && m[0].length === this.#pending.length && !final) return;
        if (m) {
          let name: string;
          try {
            name = JSON.parse(m[1]) as string;
          } catch {
            name = m[1].slice(1, -1);
          }
          out.push({ type: 'call', index: this.#numCalls++, name });
          this.#pending = this.#pending.slice(m[0].length);
          this.#state = 'arguments';
          continue;
        }
        // Not a call after all (only possible in unconstrained output): it is text.
        if (final || this.#pending.includes(close)) {
          this.#text(out, open + this.#pending, final);
          this.#pending = '';
          this.#state = 'text';
          if (final) return;
          continue;
        }
        return;
      }

      const index = this.#numCalls - 1;
      const at = this.#pending.indexOf(close);
      if (at >= 0) {
        const body = this.#pending.slice(0, at).trimEnd();
        const args = body.endsWith('}') ? body.slice(0, -1) : body;
        if (args) out.push({ type: 'arguments', index, text: args });
        out.push({ type: 'end', index });
        this.#pending = this.#pending.slice(at + close.length);
        this.#state = 'text';
        continue;
      }
      const hold = final ? this.#pending.length : this.#pending.lastIndexOf('}');
      const release = hold < 0 ? this.#pending : this.#pending.slice(0, hold);
      if (release) out.push({ type: 'arguments', index, text: release });
      this.#pending = this.#pending.slice(release.length);
      return;
    }
  }
}
