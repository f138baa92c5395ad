// What an architecture is to Paralon: a config parser, a weight spec and a layer loop. Everything
// else a forward step needs (batch validation, metadata, workspaces, embedding, the LM head, decode
// graphs) is model-neutral and lives in step.ts; architectures are found by name in registry.ts.
import type { Device, Tensor } from '../runtime/index.js';
import type { KvCachePool } from '../kv/pool.js';
import type { StepMeta } from './decode-graphs.js';
import type { WeightDType } from './config.js';
import type { KvScales } from './kv-scales.js';
import type { GgufMetadata } from './gguf/metadata.js';

/** The part of a decoder-only model's configuration that the model-neutral machinery reads. */
export interface ModelConfig {
  /** The registry name the model was loaded as (config.json architectures[0]). */
  architecture: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** Longest context the model supports (positions 0 … maxPositionEmbeddings − 1). */
  maxPositionEmbeddings: number;
  /** The dtype the checkpoint says its weights are in; each tensor's own dtype is what is used. */
  dtype: WeightDType;
  /** eos_token_id of config.json (generation_config.json usually refines it). */
  eosTokenIds: number[];
}

/**
 * One weight the layer loop reads: a checkpoint tensor of a given shape; the projections of a fused
 * matmul (q/k/v → qkv, gate/up → gateUp: one `ops.matmul(x, parts, [outs])` reads the activations
 * once), kept where the checkpoint has them, each in its own dtype; or tensors stacked into one new
 * tensor along their first dimension (experts → [E, N, K] for the MoE ops).
 */
export interface WeightSpec {
  /** Checkpoint tensor names (Hugging Face naming), in order. */
  names: string[];
  /** The shape of each named tensor. */
  shapes: number[][];
  /** 'parts': a list of the tensors as they are; 'stacked' (default): concatenated at load. */
  layout?: 'parts' | 'stacked';
  /**
   * For a stack: the name of one tensor that may hold it already stacked ([names.length, ...shape],
   * e.g. GGUF's ffn_gate_exps); when the checkpoint has it, it is used as it is (in place on cpu).
   */
  stackedAs?: string;
}

/** A weight of one tensor. */
export const weight = (name: string, shape: number[]): WeightSpec => ({ names: [name], shapes: [shape] });
/**
 * Tensors stacked along dimension 0 into one new tensor at load (they must share a dtype), or, when
 * the checkpoint holds `stackedAs` (their equal shapes stacked on a new first dimension), that tensor.
 */
export const stacked = (list: [name: string, shape: number[]][], stackedAs?: string): WeightSpec => ({
  names: list.map(([n]) => n),
  shapes: list.map(([, s]) => s),
  ...(stackedAs ? { stackedAs } : {}),
});
/** The projections of a fused matmul, as a list of the checkpoint's tensors (no copy; dtypes may differ). */
export const parts = (list: [name: string, shape: number[]][]): WeightSpec => ({ ...stacked(list), layout: 'parts' });

/** The weights every decoder-only model has around its layers, plus its layers' own. */
export interface DecoderWeights<L> {
  embedding: Tensor;
  layers: L[];
  finalNorm: Tensor;
  /** The embedding itself when tie_word_embeddings. */
  lmHead: Tensor;
  /** Bytes of weight data placed. */
  bytes: number;
  /** fp8 KV cache scales per layer, when the checkpoint stores them (kv-scales.ts). */
  kvScales?: KvScales[];
}

/**
 * What a layer loop gets for one step: T new tokens of S sequences. Activations are views of the
 * step's workspace: `hidden` is the residual stream (the embeddings on entry; the last layer's
 * output on exit), `normed` and `scratch` are free for the layers to use.
 */
export interface LayerContext<C extends ModelConfig, L> {
  config: C;
  weights: DecoderWeights<L>;
  kv: KvCachePool;
  meta: StepMeta;
  numTokens: number;
  numSeqs: number;
  hidden: Tensor<'f32'>; // [T, hiddenSize]
  normed: Tensor<'f32'>; // [T, hiddenSize]
  /** Floats [T × scratchWidth(config)], carved into views by the layer loop. */
  scratch: Tensor<'f32'>;
}

/** What a GGUF's tensors and tokenizer say about the model, beside its `<arch>.*` keys. */
export interface GgufModelFacts {
  /** Rows of token_embd.weight. */
  vocabSize: number;
  /** No output.weight: the LM head is the embedding. */
  tied: boolean;
  /** The matrices' float dtype (bf16 for quantized files). */
  dtype: WeightDType;
  /** End-of-generation token ids from the tokenizer metadata. */
  eosTokenIds: number[];
}

/** A model architecture: registered once (registry.ts), found by config.json's architectures[0]. */
export interface Architecture<C extends ModelConfig = ModelConfig, L = unknown> {
  /** config.json `architectures` values this file runs (the first is its canonical name). */
  names: readonly string[];
  /** config.json `model_type` values (for configs that omit `architectures`). */
  modelTypes?: readonly string[];
  /** GGUF `general.architecture` values, for checkpoints in that format. */
  ggufNames?: readonly string[];
  /** Validates a parsed config.json; `source` names the file in errors. */
  parseConfig(json: unknown, source: string): C;
  /** Reads the config from a GGUF's metadata (llama.cpp's `<arch>.*` keys); required with ggufNames. */
  parseGgufConfig?(meta: GgufMetadata, facts: GgufModelFacts): C;
  /** The weights of layer `i`, by the key the layer loop reads them under. */
  layerWeights(config: C, i: number): Record<keyof L & string, WeightSpec>;
  /** Pairs of layer weights that one op reads with one dtype (checked at load, naming the file). */
  sameDtype?: readonly (readonly [keyof L & string, keyof L & string])[];
  /** Floats of per-token scratch the layer loop needs (times the step's token count). */
  scratchWidth(config: C): number;
  /** Queues every layer of one step on the device. */
  forwardLayers(ctx: LayerContext<C, L>): void;
}

/** Any registered architecture (the registry holds them without their type parameters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyArchitecture = Architecture<any, any>;

/** Allocates one tensor per call, disposing all of them when a later one fails. */
export function allocateAll<T>(device: Device, what: string, build: (alloc: (shape: number[]) => Tensor<'f32'>) => T): T {
  const made: Tensor[] = [];
  try {
    return build((shape) => {
      const t = device.empty(shape);
      made.push(t);
      return t;
    });
  } catch (e) {
    for (const t of made) t.dispose();
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}
