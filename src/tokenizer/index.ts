// Text in and out of the model. A generation streams through, per request:
//   token id → IncrementalDetokenizer.push (UTF-8-complete text) → StopMatcher.push (held back while a
//   stop string may be forming) → ReasoningSplitter.push (reasoning vs content, Qwen3 <think> blocks),
// and at the end each stage flushes in that order, its flush() pushed into the next stage. The prompt comes from Tokenizer.encodeChat,
// and reasoningStartForPrompt(prompt) tells the splitter where the output starts.

export { Tokenizer, type TokenizerConfig, type EncodeOptions, type DecodeOptions, type EncodedChat } from './tokenizer.js';
export { ChatTemplate, type ChatTemplateSource, type TemplateSpecialTokens } from './chat-template.js';
export { IncrementalDetokenizer, type TokenByteSource, type DetokenizerOptions } from './detokenizer.js';
export { StopMatcher, type StopResult } from './stop.js';
export {
  ReasoningSplitter,
  reasoningStartForPrompt,
  QWEN3_REASONING_TAGS,
  type ReasoningStart,
  type ReasoningTags,
  type ReasoningDelta,
} from './reasoning.js';
