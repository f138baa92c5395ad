// The Qwen3 family's hyper-parameters in GGUF, llama.cpp's architectures `qwen3` and `qwen3moe`: the
// `<arch>.*` keys ⇄ Qwen3Config / Qwen3MoeConfig. Key names and defaults are llama.cpp's
// (llama-arch.cpp, llama-model.cpp): head_count_kv defaults to head_count, key_length to
// embedding_length / head_count, rope.freq_base to 10,000; head_count and feed_forward_length may be
// per-layer arrays. Q/K rows need no un-permuting: llama.cpp's converter permutes them only for
// LlamaModel (interleaved RoPE); Qwen2/Qwen3 use rotate-half ("NEOX") RoPE in llama.cpp as in
// transformers, and their weights are written as they are.
//
// YaRN (convert_hf_to_gguf's rope_parameters → keys): rope.scaling.type "yarn", rope.scaling.factor,
// rope.scaling.original_context_length (default: context_length, as llama.cpp's n_ctx_orig_yarn),
// and optionally rope.scaling.yarn_beta_fast / yarn_beta_slow / yarn_attn_factor (transformers'
// beta_fast, beta_slow, attention_factor) and rope.scaling.attn_factor (llama.cpp's multiplier of the
// cos/sin scale). llama.cpp's qwen3 loaders read only type, factor, original_context_length and
// attn_factor; the yarn_* keys default to the values transformers uses, so files without them agree.
import type { GgufModelFacts, ModelConfig } from '../architecture.js';
import type { RopeFields } from '../config.js';
import type { Qwen3Config } from '../qwen3.js';
import { ropeFrequencies, type RopeScaling } from '../../runtime/index.js';
import type { GgufMetadata } from './metadata.js';
import { gguf, type GgufValue } from './types.js';

export const QWEN3_GGUF_ARCHITECTURE = 'qwen3';

/** A Qwen3-family config without its MLP fields: what every `<arch>.*` of the family states alike. */
export type Qwen3FamilyFields = ModelConfig & RopeFields;

/** The attention, norm, vocabulary, context and RoPE fields of a Qwen3-family GGUF under `<arch>.*`. */
export function qwen3FamilyFromGguf(meta: GgufMetadata, facts: GgufModelFacts, arch: string, architecture: string): Qwen3FamilyFields {
  const k = (name: string) => `${arch}.${name}`;
  const hiddenSize = meta.uint(k('embedding_length'), 1);
  const numHeads = perLayerUint(meta, k('attention.head_count'));
  const numKvHeads = meta.has(k('attention.head_count_kv')) ? perLayerUint(meta, k('attention.head_count_kv')) : numHeads;
  if (numHeads % numKvHeads !== 0)
    throw new Error(`${meta.file}: ${k('attention.head_count')} (${numHeads}) must be a multiple of ${k('attention.head_count_kv')} (${numKvHeads})`);
  const headDim = meta.uint(k('attention.key_length'), 2, true) ?? hiddenSize / numHeads;
  const valueDim = meta.uint(k('attention.value_length'), 2, true) ?? headDim;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || valueDim !== headDim)
    throw new Error(`${meta.file}: ${k('attention.key_length')} (${headDim}) and ${k('attention.value_length')} (${valueDim}) must be one even head width`);
  if (meta.has(k('vocab_size')) && meta.uint(k('vocab_size')) !== facts.vocabSize)
    throw new Error(`${meta.file}: ${k('vocab_size')} is ${meta.uint(k('vocab_size'))}, token_embd.weight has ${facts.vocabSize} rows`);
  for (const id of facts.eosTokenIds)
    if (id >= facts.vocabSize) throw new Error(`${meta.file}: end-of-generation token ${id} is outside the model's ${facts.vocabSize} rows`);
  const contextLength = meta.uint(k('context_length'), 1);
  const ropeScaling = ropeScalingFromGguf(meta, arch, contextLength, headDim);
  return {
    architecture,
    hiddenSize,
    numLayers: meta.uint(k('block_count'), 1),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: facts.vocabSize,
    rmsNormEps: meta.float(k('attention.layer_norm_rms_epsilon'), 0),
    ropeTheta: meta.float(k('rope.freq_base'), 0, true) ?? 10_000,
    ...(ropeScaling ? { ropeScaling } : {}),
    // Under YaRN: factor × original, as config.json's rope_scaling gives it (config.ts parseRopeFields).
    maxPositionEmbeddings: ropeScaling ? Math.floor(ropeScaling.factor * ropeScaling.originalMaxPositionEmbeddings) : contextLength,
    tieWordEmbeddings: facts.tied,
    dtype: facts.dtype,
    eosTokenIds: facts.eosTokenIds,
  };
}

/** The `<arch>.*` keys of those fields (what llama.cpp's converter writes). */
export function qwen3FamilyToGguf(c: Qwen3FamilyFields, arch: string): [string, GgufValue][] {
  const k = (name: string) => `${arch}.${name}`;
  return [
    [k('block_count'), gguf.u32(c.numLayers)],
    [k('context_length'), gguf.u32(c.maxPositionEmbeddings)],
    [k('embedding_length'), gguf.u32(c.hiddenSize)],
    [k('attention.head_count'), gguf.u32(c.numHeads)],
    [k('attention.head_count_kv'), gguf.u32(c.numKvHeads)],
    // Explicit head width: Qwen3's head_dim is not hidden / heads (128 vs 64 for Qwen3-0.6B).
    [k('attention.key_length'), gguf.u32(c.headDim)],
    [k('attention.value_length'), gguf.u32(c.headDim)],
    [k('rope.freq_base'), gguf.f32(c.ropeTheta)],
    ...(c.ropeScaling ? ropeScalingToGguf(c.ropeScaling, c.headDim, c.ropeTheta, arch) : []),
    [k('attention.layer_norm_rms_epsilon'), gguf.f32(c.rmsNormEps)],
  ];
}

/** The Qwen3Config a qwen3 GGUF describes. */
export function qwen3ConfigFromGguf(meta: GgufMetadata, facts: GgufModelFacts): Qwen3Config {
  return {
    ...qwen3FamilyFromGguf(meta, facts, QWEN3_GGUF_ARCHITECTURE, 'Qwen3ForCausalLM'),
    intermediateSize: perLayerUint(meta, `${QWEN3_GGUF_ARCHITECTURE}.feed_forward_length`),
  };
}

/** The qwen3.* keys for a config. */
export function qwen3ToGguf(c: Qwen3Config): [string, GgufValue][] {
  return [
    ...qwen3FamilyToGguf(c, QWEN3_GGUF_ARCHITECTURE),
    [`${QWEN3_GGUF_ARCHITECTURE}.feed_forward_length`, gguf.u32(c.intermediateSize)],
  ];
}

/** YaRN from the rope.scaling.* keys; undefined for plain RoPE; an error naming the key otherwise. */
function ropeScalingFromGguf(meta: GgufMetadata, arch: string, contextLength: number, headDim: number): RopeScaling | undefined {
  const k = (name: string) => `${arch}.rope.scaling.${name}`;
  // llama.cpp's default type is "linear", a no-op with factor 0 or 1.
  const type = meta.string(k('type'), true) ?? 'linear';
  const factor = meta.float(k('factor'), undefined, true) ?? 0;
  if (type === 'none' || (type === 'linear' && (factor === 0 || factor === 1))) return undefined;
  if (type !== 'yarn')
    throw new Error(`${meta.file}: ${k('type')} "${type}" with factor ${factor}: Paralon runs the default RoPE and "yarn"`);
  if (!(factor >= 1)) throw new Error(`${meta.file}: ${k('factor')} must be ≥ 1 for yarn (got ${factor})`);
  const extFactor = meta.float(k('yarn_ext_factor'), undefined, true);
  if (extFactor !== undefined && extFactor !== 1)
    throw new Error(`${meta.file}: ${k('yarn_ext_factor')} is ${extFactor}; Paralon runs YaRN's full ramp (1)`);
  const logMul = meta.float(k('yarn_log_multiplier'), undefined, true);
  if (logMul !== undefined && logMul !== 0)
    throw new Error(`${meta.file}: ${k('yarn_log_multiplier')} is ${logMul}; DeepSeek-style mscale is not read from GGUF`);
  const scaling: RopeScaling = {
    type: 'yarn',
    factor,
    originalMaxPositionEmbeddings: meta.uint(k('original_context_length'), 1, true) ?? contextLength,
  };
  const betaFast = meta.float(k('yarn_beta_fast'), 0, true);
  const betaSlow = meta.float(k('yarn_beta_slow'), 0, true);
  if ((betaSlow ?? 1) >= (betaFast ?? 32))
    throw new Error(`${meta.file}: ${k('yarn_beta_slow')} (${betaSlow ?? 1}) must be below ${k('yarn_beta_fast')} (${betaFast ?? 32})`);
  if (betaFast !== undefined) scaling.betaFast = betaFast;
  if (betaSlow !== undefined) scaling.betaSlow = betaSlow;
  const yarnAttn = meta.float(k('yarn_attn_factor'), 0, true);
  const attnMul = meta.float(k('attn_factor'), 0, true);
  if (yarnAttn !== undefined || (attnMul !== undefined && attnMul !== 1)) {
    const base = yarnAttn ?? ropeFrequencies(headDim, { theta: 10_000, scaling }).attentionFactor;
    scaling.attentionFactor = base * (attnMul ?? 1);
  }
  return scaling;
}

/** The rope.scaling.* keys of a YaRN scaling (the converter's, with a computed mscale as yarn_attn_factor). */
function ropeScalingToGguf(s: RopeScaling, headDim: number, theta: number, arch: string): [string, GgufValue][] {
  const k = (name: string) => `${arch}.rope.scaling.${name}`;
  if (s.truncate === false)
    throw new Error(`GGUF export: rope_scaling.truncate = false has no GGUF key (llama.cpp always rounds YaRN's correction range)`);
  const out: [string, GgufValue][] = [
    [k('type'), gguf.string('yarn')],
    [k('factor'), gguf.f32(s.factor)],
    [k('original_context_length'), gguf.u32(s.originalMaxPositionEmbeddings)],
  ];
  if (s.betaFast !== undefined) out.push([k('yarn_beta_fast'), gguf.f32(s.betaFast)]);
  if (s.betaSlow !== undefined) out.push([k('yarn_beta_slow'), gguf.f32(s.betaSlow)]);
  if (s.attentionFactor !== undefined || s.mscale !== undefined || s.mscaleAllDim !== undefined)
    out.push([k('yarn_attn_factor'), gguf.f32(ropeFrequencies(headDim, { theta, scaling: s }).attentionFactor)]);
  return out;
}

/** A per-layer count that llama.cpp accepts as one integer or one per layer; Paralon needs one value. */
export function perLayerUint(meta: GgufMetadata, key: string): number {
  const v = meta.get(key);
  if (v?.kind === 'array') {
    const values = meta.ints(key);
    if (values.length === 0 || values.some((x) => x !== values[0] || !(x >= 1)))
      throw new Error(`${meta.file}: ${key} differs between layers (${values.join(', ')}); Paralon runs uniform layers`);
    return values[0];
  }
  return meta.uint(key, 1);
}
