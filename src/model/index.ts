// Qwen3 on Paralon's runtime: configuration, safetensors checkpoints, weights and the forward pass.
export {
  readQwen3Config,
  readGenerationDefaults,
  parseQwen3Config,
  parseGenerationDefaults,
  type Qwen3Config,
  type GenerationDefaults,
  type WeightDType,
} from './config.js';
export { SafetensorsCheckpoint, type TensorEntry } from './safetensors.js';
export { writeSafetensors, writeCheckpointTensors, type TensorToWrite, type SafetensorsDType } from './safetensors-writer.js';
export { loadQwen3Weights, disposeWeights, type Qwen3Weights, type LayerWeights, type LoadProgress } from './weights.js';
export { Qwen3Model, type SequenceChunk, type ForwardOptions, type Qwen3ModelOptions, type Qwen3LoadOptions } from './qwen3.js';
export { randomCheckpoint, hfConfigJson, type RandomCheckpointOptions, type RandomCheckpoint } from './random-checkpoint.js';
export { writeDemoModel, type DemoModelOptions } from './demo.js';
