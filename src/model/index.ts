// Models on Paralon's runtime: the registry of architectures, their configuration, checkpoints
// (safetensors) and weights, and the model-neutral forward step.
export {
  readConfigJson,
  readGenerationDefaults,
  parseGenerationDefaults,
  parseDecoderFields,
  Fields,
  type GenerationDefaults,
  type WeightDType,
} from './config.js';
export {
  weight,
  stacked,
  parts,
  type Architecture,
  type AnyArchitecture,
  type ModelConfig,
  type WeightSpec,
  type DecoderWeights,
  type LayerContext,
} from './architecture.js';
export { registerArchitecture, architectureNames, ggufArchitecture, parseModelConfig, readModelConfig } from './registry.js';
export * as blocks from './blocks.js';
export { qwen3, parseQwen3Config, type Qwen3Config, type Qwen3Layer } from './qwen3.js';
export { qwen3Moe, parseQwen3MoeConfig, type Qwen3MoeConfig, type Qwen3MoeLayer } from './qwen3-moe.js';
export { SafetensorsCheckpoint } from './safetensors.js';
export { writeSafetensors, writeCheckpointTensors, type TensorToWrite, type SafetensorsDType } from './safetensors-writer.js';
export { loadDecoderWeights, resolveWeights, disposeWeights, type Checkpoint, type TensorEntry, type LoadProgress } from './weights.js';
export { CausalLM, ROW_LOGITS_CHUNK, type SequenceChunk, type ForwardOptions, type CausalLMOptions, type CausalLMLoadOptions, type ModelTask } from './step.js';
export { randomCheckpoint, hfConfigJson, type RandomCheckpointOptions, type RandomCheckpoint } from './random-checkpoint.js';
export { writeDemoModel, type DemoModelOptions } from './demo.js';
