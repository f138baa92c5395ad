// Paralon's public API: load a checkpoint and generate, add an architecture, or use the runtime's
// devices and ops.
export { loadModel, Model, type LoadModelOptions, type ModelStats, type ChatOptions } from './engine/model.js';
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
  blocks,
  type Architecture,
  type ModelConfig,
  type WeightSpec,
  type LayerContext,
} from './model/index.js';
export { Tokenizer } from './tokenizer/index.js';
export * from './runtime/index.js';
