// One choice's generated text as a chat-style answer: Qwen3's reasoning block split off, then (with
// tools) <tool_call> blocks parsed out of the content. Shared by chat completions and responses.
import { ReasoningSplitter, type ReasoningStart } from '../tokenizer/reasoning.js';
import { ToolCallParser, type ToolCallPart } from '../tokenizer/tool-calls.js';

export interface ChoiceTextPart {
  reasoning: string;
  parts: ToolCallPart[];
}

/** One choice's text path: reasoning split off, then (with tools) calls parsed out of the content. */
export class ChoiceText {
  readonly #reasoning: ReasoningSplitter;
  readonly #calls: ToolCallParser | null;

  constructor(start: ReasoningStart, parseToolCalls: boolean) {
    this.#reasoning = new ReasoningSplitter(start);
    this.#calls = parseToolCalls ? new ToolCallParser() : null;
  }

  get numCalls(): number {
    return this.#calls?.numCalls ?? 0;
  }

  push(text: string): ChoiceTextPart {
    return this.#split(this.#reasoning.push(text), false);
  }

  flush(): ChoiceTextPart {
    return this.#split(this.#reasoning.flush(), true);
  }

  #split(part: { reasoning: string; content: string }, final: boolean): ChoiceTextPart {
    if (this.#calls === null) return { reasoning: part.reasoning, parts: part.content ? [{ type: 'text', text: part.content }] : [] };
    const parts = this.#calls.push(part.content);
    if (final) parts.push(...this.#calls.flush());
    return { reasoning: part.reasoning, parts };
  }
}

