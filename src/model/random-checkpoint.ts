// Random-weight Qwen3 and Qwen3-MoE checkpoints in exactly the Hugging Face layout (config.json,
// generation_config.json, safetensors), of any shape and dtype, tied or untied, single-file or
// sharded. Deterministic: each tensor's values come from its own PRNG stream, seeded from the
// checkpoint seed and the tensor name, so they do not depend on file order or sharding.
//
// Scales keep activations O(1) through any depth: matrices of std 1/√fan_in, norm weights 1 ± 0.2
// std (so a mix-up of q_norm and k_norm shows), embeddings of std hidden^-¼ — the (tied) LM head
// then gives logits of standard deviation ≈ hidden^¼, peaked enough for greedy decoding to be stable.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { toBf16, toF16 } from '../runtime/dtype.js';
import type { RopeScaling } from '../runtime/index.js';
import type { WeightDType } from './config.js';
import type { KvScales } from './kv-scales.js';
import { parseQwen3Config, type Qwen3Config } from './qwen3.js';
import { isSparseLayer, parseQwen3MoeConfig, type Qwen3MoeConfig } from './qwen3-moe.js';
import { writeCheckpointTensors, type SafetensorsDType, type TensorToWrite } from './safetensors-writer.js';

export interface RandomCheckpointOptions {
  /** Directory to write into (created if missing; existing files of the same names are replaced). */
  dir: string;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  tieWordEmbeddings?: boolean;
  dtype?: WeightDType;
  /** Number of safetensors files (1: model.safetensors). */
  numShards?: number;
  seed?: number;
  ropeTheta?: number;
  /** YaRN scaling, written as config.json's rope_scaling (the context becomes factor × original). */
  ropeScaling?: RopeScaling;
  rmsNormEps?: number;
  maxPositionEmbeddings?: number;
  eosTokenIds?: number[];
  /** Writes a Qwen3MoeForCausalLM checkpoint: experts in the sparse layers (intermediateSize: the dense ones). */
  moe?: RandomMoeOptions;
  /** Extra generation_config.json fields (sampling defaults), in Hugging Face names. */
  generationConfig?: Record<string, unknown>;
  /** fp8 KV cache scales per layer, written as F32 scalars self_attn.k_scale / v_scale (src/model/kv-scales.ts). */
  kvScales?: KvScales[];
}

/** The mixture-of-experts settings of a random Qwen3-MoE checkpoint (Qwen3MoeConfig's own fields). */
export interface RandomMoeOptions {
  numExperts: number;
  numExpertsPerTok: number;
  moeIntermediateSize: number;
  normTopkProb?: boolean;
  decoderSparseStep?: number;
  mlpOnlyLayers?: number[];
}

/** The MoE fields of a config, as written to config.json. */
export type MoeFields = Pick<Qwen3MoeConfig, 'numExperts' | 'numExpertsPerTok' | 'moeIntermediateSize' | 'normTopkProb' | 'decoderSparseStep' | 'mlpOnlyLayers'>;

export interface RandomCheckpoint {
  dir: string;
  /** The dense fields (every checkpoint), as a loader parses them. */
  config: Qwen3Config;
  /** The MoE fields of a Qwen3-MoE checkpoint. */
  moe?: MoeFields;
  /** The safetensors files written. */
  files: string[];
}

const SAFETENSORS_DTYPE: Record<WeightDType, SafetensorsDType> = { bf16: 'BF16', f16: 'F16', f32: 'F32' };
const TORCH_DTYPE: Record<WeightDType, string> = { bf16: 'bfloat16', f16: 'float16', f32: 'float32' };

/** Writes a random Qwen3 checkpoint (small by default) and returns its config. */
export function randomCheckpoint(options: RandomCheckpointOptions): RandomCheckpoint {
  const draft: Qwen3Config = {
    architecture: 'Qwen3ForCausalLM',
    hiddenSize: options.hiddenSize ?? 64,
    intermediateSize: options.intermediateSize ?? 96,
    numLayers: options.numLayers ?? 2,
    numHeads: options.numHeads ?? 4,
    numKvHeads: options.numKvHeads ?? 2,
    headDim: options.headDim ?? 16,
    vocabSize: options.vocabSize ?? 128,
    rmsNormEps: options.rmsNormEps ?? 1e-6,
    ropeTheta: options.ropeTheta ?? 1_000_000,
    ...(options.ropeScaling ? { ropeScaling: options.ropeScaling } : {}),
    tieWordEmbeddings: options.tieWordEmbeddings ?? true,
    maxPositionEmbeddings: options.maxPositionEmbeddings ?? 40_960,
    dtype: options.dtype ?? 'bf16',
    eosTokenIds: options.eosTokenIds ?? [0],
  };
  const seed = options.seed ?? 0;
  const moe: MoeFields | undefined = options.moe && {
    numExperts: options.moe.numExperts,
    numExpertsPerTok: options.moe.numExpertsPerTok,
    moeIntermediateSize: options.moe.moeIntermediateSize,
    normTopkProb: options.moe.normTopkProb ?? true,
    decoderSparseStep: options.moe.decoderSparseStep ?? 1,
    mlpOnlyLayers: options.moe.mlpOnlyLayers ?? [],
  };
  // The same checks a loader will make; under YaRN the loader's context is factor × original.
  const json = hfConfigJson(draft, moe);
  const parsed = moe ? parseQwen3MoeConfig(json, 'randomCheckpoint') : parseQwen3Config(json, 'randomCheckpoint');
  const config: Qwen3Config = { ...draft, maxPositionEmbeddings: parsed.maxPositionEmbeddings };
  mkdirSync(options.dir, { recursive: true });
  writeJson(path.join(options.dir, 'config.json'), hfConfigJson(config, moe));
  writeJson(path.join(options.dir, 'generation_config.json'), {
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    ...options.generationConfig,
    transformers_version: '4.51.0',
  });
  const sparse = moe ? (i: number) => isSparseLayer({ ...config, ...moe } as Qwen3MoeConfig, i) : () => false;
  const tensors = randomTensors(config, seed, moe, sparse);
  if (options.kvScales) {
    if (options.kvScales.length !== config.numLayers) throw new Error(`randomCheckpoint: kvScales needs ${config.numLayers} layers`);
    options.kvScales.forEach((s, i) => {
      for (const [which, value] of [['k', s.k], ['v', s.v]] as const)
        tensors.push({ name: `model.layers.${i}.self_attn.${which}_scale`, dtype: 'F32', shape: [], data: Float32Array.of(value) });
    });
  }
  const files = writeCheckpointTensors(options.dir, tensors, options.numShards ?? 1);
  return { dir: options.dir, config, files, ...(moe ? { moe } : {}) };
}

/** config.json as transformers writes it for Qwen3ForCausalLM, or Qwen3MoeForCausalLM with `moe`. */
export function hfConfigJson(c: Qwen3Config, moe?: MoeFields): Record<string, unknown> {
  const moeFields = moe
    ? {
        decoder_sparse_step: moe.decoderSparseStep,
        mlp_only_layers: moe.mlpOnlyLayers,
        moe_intermediate_size: moe.moeIntermediateSize,
        norm_topk_prob: moe.normTopkProb,
        num_experts: moe.numExperts,
        num_experts_per_tok: moe.numExpertsPerTok,
        output_router_logits: false,
        router_aux_loss_coef: 0.001,
      }
    : {};
  return {
    architectures: [moe ? 'Qwen3MoeForCausalLM' : 'Qwen3ForCausalLM'],
    ...moeFields,
    attention_bias: false,
    attention_dropout: 0.0,
    eos_token_id: c.eosTokenIds[0],
    head_dim: c.headDim,
    hidden_act: 'silu',
    hidden_size: c.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositionEmbeddings,
    max_window_layers: c.numLayers,
    model_type: moe ? 'qwen3_moe' : 'qwen3',
    num_attention_heads: c.numHeads,
    num_hidden_layers: c.numLayers,
    num_key_value_heads: c.numKvHeads,
    rms_norm_eps: c.rmsNormEps,
    rope_scaling: c.ropeScaling ? hfRopeScaling(c.ropeScaling) : null,
    rope_theta: c.ropeTheta,
    sliding_window: null,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: TORCH_DTYPE[c.dtype],
    transformers_version: '4.51.0',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: c.vocabSize,
  };
}

/** A rope scaling in config.json's names (Qwen3's model card writes rope_type, factor, original_max_position_embeddings). */
export function hfRopeScaling(s: RopeScaling): Record<string, unknown> {
  const json: Record<string, unknown> = {
    rope_type: s.type,
    factor: s.factor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
  const optional: [string, unknown][] = [['beta_fast', s.betaFast], ['beta_slow', s.betaSlow],
    ['attention_factor', s.attentionFactor], ['mscale', s.mscale], ['mscale_all_dim', s.mscaleAllDim], ['truncate', s.truncate]];
  for (const [key, value] of optional) if (value !== undefined) json[key] = value;
  return json;
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** The checkpoint's tensors, data generated when the writer asks for it. */
function randomTensors(c: Qwen3Config, seed: number, moe: MoeFields | undefined, sparse: (layer: number) => boolean): TensorToWrite[] {
  const tensors: TensorToWrite[] = [];
  const dtype = SAFETENSORS_DTYPE[c.dtype];
  // Values are uniform with the wanted mean and standard deviation (half-width √3·std), as
  // PyTorch's default Linear init is: one PRNG draw per value keeps the 151,936-row demo fast.
  const add = (name: string, shape: number[], mean: number, std: number) =>
    tensors.push({
      name,
      dtype,
      shape,
      data: () => {
        const rng = new Rng(seed, name);
        const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
        const width = 2 * Math.sqrt(3) * std;
        const low = mean - width / 2;
        for (let i = 0; i < values.length; i++) values[i] = low + width * rng.uniform();
        return c.dtype === 'bf16' ? toBf16(values) : c.dtype === 'f16' ? toF16(values) : values;
      },
    });
  const matrix = (name: string, rows: number, cols: number) => add(name, [rows, cols], 0, 1 / Math.sqrt(cols));
  const norm = (name: string, dim: number) => add(name, [dim], 1, 0.2);
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const embedStd = 1 / Math.sqrt(Math.sqrt(c.hiddenSize));

  add('model.embed_tokens.weight', [c.vocabSize, c.hiddenSize], 0, embedStd);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    norm(`${p}input_layernorm.weight`, c.hiddenSize);
    matrix(`${p}self_attn.q_proj.weight`, qDim, c.hiddenSize);
    matrix(`${p}self_attn.k_proj.weight`, kvDim, c.hiddenSize);
    matrix(`${p}self_attn.v_proj.weight`, kvDim, c.hiddenSize);
    matrix(`${p}self_attn.o_proj.weight`, c.hiddenSize, qDim);
    norm(`${p}self_attn.q_norm.weight`, c.headDim);
    norm(`${p}self_attn.k_norm.weight`, c.headDim);
    norm(`${p}post_attention_layernorm.weight`, c.hiddenSize);
    if (moe && sparse(i)) {
      // Router rows of std 1/√hidden give logits of std ≈ 1: routing spreads over the experts.
      matrix(`${p}mlp.gate.weight`, moe.numExperts, c.hiddenSize);
      for (let e = 0; e < moe.numExperts; e++) {
        matrix(`${p}mlp.experts.${e}.gate_proj.weight`, moe.moeIntermediateSize, c.hiddenSize);
        matrix(`${p}mlp.experts.${e}.up_proj.weight`, moe.moeIntermediateSize, c.hiddenSize);
        matrix(`${p}mlp.experts.${e}.down_proj.weight`, c.hiddenSize, moe.moeIntermediateSize);
      }
    } else {
      matrix(`${p}mlp.gate_proj.weight`, c.intermediateSize, c.hiddenSize);
      matrix(`${p}mlp.up_proj.weight`, c.intermediateSize, c.hiddenSize);
      matrix(`${p}mlp.down_proj.weight`, c.hiddenSize, c.intermediateSize);
    }
  }
  norm('model.norm.weight', c.hiddenSize);
  if (!c.tieWordEmbeddings) add('lm_head.weight', [c.vocabSize, c.hiddenSize], 0, embedStd);
  return tensors;
}

/** xoshiro128** seeded through splitmix32 from (seed, stream name). */
class Rng {
  #s = new Uint32Array(4);

  constructor(seed: number, stream: string) {
    let h = (seed >>> 0) ^ 0x9e3779b9;
    for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x01000193);
    let x = h >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  }

}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
