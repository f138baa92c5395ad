// Paralon's public API: load a Qwen3 checkpoint and generate, or use the runtime's devices and ops.
export { loadModel, Model, type LoadModelOptions, type ModelStats, type ChatOptions, type CompleteOptions } from './engine/model.js';
export type { PreparedChat } from './engine/chat.js';
export type { OutputOptions } from './engine/output-format.js';
export type { TokenConstraint } from './engine/constraint.js';
export { RequestError, EngineBusyError, type EngineStats } from './engine/engine.js';
export type {
  SamplingOptions,
  GenerationEvent,
  TokenLogprob,
  Usage,
  FinishReason,
  ChatMessage,
  ChatTemplateOptions,
  GenerateCallOptions,
  ChatEvent,
  ChatFinishReason,
  Tool,
  ToolCall,
  ToolChoice,
  ResponseFormat,
  JsonSchema,
} from './engine/types.js';
export { writeDemoModel, type DemoModelOptions } from './model/demo.js';
export { Tokenizer } from './tokenizer/index.js';
export * from './runtime/index.js';
