// One chat turn for the terminal commands (run, chat): the messages rendered by the model's template,
// generated through the library, the stream split into Qwen3 reasoning and answer, timed.
import type { Model } from '../engine/model.js';
import type { ChatMessage, FinishReason, SamplingOptions, Usage } from '../engine/types.js';
import { ReasoningSplitter, reasoningStartForPrompt, type ReasoningDelta } from '../tokenizer/index.js';

export interface TurnResult {
  reasoning: string;
  content: string;
  finishReason: FinishReason;
  usage: Usage;
  /** Seconds from the request to the first token. */
  firstTokenSeconds: number;
  /** Completion tokens per second after the first one. */
  tokensPerSecond: number;
}

export interface TurnOptions {
  sampling: SamplingOptions;
  /** Qwen3's thinking switch (the template's enable_thinking). */
  enableThinking: boolean;
  signal?: AbortSignal;
  onDelta: (delta: ReasoningDelta) => void;
}

export async function chatTurn(model: Model, messages: readonly ChatMessage[], options: TurnOptions): Promise<TurnResult> {
  const { prompt, ids } = model.tokenizer.encodeChat(messages, { enableThinking: options.enableThinking });
  const splitter = new ReasoningSplitter(reasoningStartForPrompt(prompt));
  const result = { reasoning: '', content: '' };
  const emit = (d: ReasoningDelta) => {
    result.reasoning += d.reasoning;
    result.content += d.content;
    if (d.reasoning || d.content) options.onDelta(d);
  };
  const start = performance.now();
  let first = 0;
  for await (const event of model.generate(ids, options.sampling, { signal: options.signal })) {
    if (event.type === 'delta') {
      if (first === 0 && event.tokenIds.length > 0) first = performance.now();
      emit(splitter.push(event.text));
      continue;
    }
    emit(splitter.flush());
    const end = performance.now();
    const decoded = Math.max(event.usage.completionTokens - 1, 0);
    return {
      ...result,
      finishReason: event.finishReason,
      usage: event.usage,
      firstTokenSeconds: first === 0 ? 0 : (first - start) / 1000,
      tokensPerSecond: first === 0 || end <= first ? 0 : decoded / ((end - first) / 1000),
    };
  }
  throw new Error('the generation ended without a done event');
}
