// Paralon's public API: load a checkpoint (a directory, a .gguf file or a hub id) and generate, add an
// architecture, or use the runtime's devices and ops.
export { Model, type LoadModelOptions, type ModelStats, type ChatOptions, type CompleteOptions } from './engine/model.js';
export type { PreparedChat } from './engine/chat.js';
export type { OutputOptions } from './engine/output-format.js';
export { loadModel, type LoadOptions } from './load-model.js';
export { HubError, listCachedModels, removeCachedModel, hubCacheDir, type HubOptions, type DownloadProgress, type CachedModel } from './hub/index.js';
export { RequestError, EngineBusyError, type EngineStats } from './engine/engine.js';
export type {
  SamplingOptions,
  GenerationEvent,
  TokenLogprob,
  PromptLogprobsList,
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
export { maskOf, maskAllows, maskWords, type TokenConstraint } from './engine/constraint.js';
export type { SamplingParams } from './engine/sampling-params.js';
export { writeDemoModel, type DemoModelOptions } from './model/demo.js';
export {
  registerArchitecture,
  architectureNames,
  parseDecoderFields,
  Fields,
  weight,
  stacked,
  parts,
  blocks,
  type Architecture,
  type ModelConfig,
  type WeightSpec,
  type LayerContext,
} from './model/index.js';
export { Tokenizer } from './tokenizer/index.js';
export * from './runtime/index.js';
