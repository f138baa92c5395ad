// Qwen3's hyper-parameters in GGUF, llama.cpp's architecture `qwen3`: the `qwen3.*` keys ⇄ Qwen3Config.
// Key names and defaults are llama.cpp's (llama-arch.cpp, llama-model.cpp): head_count_kv defaults to
// head_count, key_length to embedding_length / head_count, rope.freq_base to 10,000; head_count and
// feed_forward_length may be per-layer arrays. Q/K rows need no un-permuting: llama.cpp's converter
// permutes them only for LlamaModel (interleaved RoPE); Qwen2/Qwen3 use rotate-half ("NEOX") RoPE in
// llama.cpp as in transformers, and their weights are written as they are.
import type { GgufModelFacts } from '../architecture.js';
import type { Qwen3Config } from '../qwen3.js';
import type { GgufMetadata } from './metadata.js';
import { gguf, type GgufValue } from './types.js';

export const QWEN3_GGUF_ARCHITECTURE = 'qwen3';
const k = (name: string) => `${QWEN3_GGUF_ARCHITECTURE}.${name}`;

/** The Qwen3Config a qwen3 GGUF describes. */
export function qwen3ConfigFromGguf(meta: GgufMetadata, facts: GgufModelFacts): Qwen3Config {
  const hiddenSize = meta.uint(k('embedding_length'), 1);
  const numHeads = perLayerUint(meta, k('attention.head_count'));
  const numKvHeads = meta.has(k('attention.head_count_kv')) ? perLayerUint(meta, k('attention.head_count_kv')) : numHeads;
  if (numHeads % numKvHeads !== 0)
    throw new Error(`${meta.file}: ${k('attention.head_count')} (${numHeads}) must be a multiple of ${k('attention.head_count_kv')} (${numKvHeads})`);
  const headDim = meta.uint(k('attention.key_length'), 2, true) ?? hiddenSize / numHeads;
  const valueDim = meta.uint(k('attention.value_length'), 2, true) ?? headDim;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || valueDim !== headDim)
    throw new Error(`${meta.file}: ${k('attention.key_length')} (${headDim}) and ${k('attention.value_length')} (${valueDim}) must be one even head width`);
  const scaling = meta.string(k('rope.scaling.type'), true) ?? 'none';
  const factor = meta.float(k('rope.scaling.factor'), undefined, true) ?? 1;
  if (!((scaling === 'none' || scaling === 'linear') && (factor === 1 || factor === 0)))
    throw new Error(`${meta.file}: ${k('rope.scaling.type')} "${scaling}" with factor ${factor}: rope scaling is not supported (only the default RoPE)`);
  if (meta.has(k('vocab_size')) && meta.uint(k('vocab_size')) !== facts.vocabSize)
    throw new Error(`${meta.file}: ${k('vocab_size')} is ${meta.uint(k('vocab_size'))}, token_embd.weight has ${facts.vocabSize} rows`);
  for (const id of facts.eosTokenIds)
    if (id >= facts.vocabSize) throw new Error(`${meta.file}: end-of-generation token ${id} is outside the model's ${facts.vocabSize} rows`);
  return {
    architecture: 'Qwen3ForCausalLM',
    hiddenSize,
    intermediateSize: perLayerUint(meta, k('feed_forward_length')),
    numLayers: meta.uint(k('block_count'), 1),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: facts.vocabSize,
    rmsNormEps: meta.float(k('attention.layer_norm_rms_epsilon'), 0),
    ropeTheta: meta.float(k('rope.freq_base'), 0, true) ?? 10_000,
    tieWordEmbeddings: facts.tied,
    maxPositionEmbeddings: meta.uint(k('context_length'), 1),
    dtype: facts.dtype,
    eosTokenIds: facts.eosTokenIds,
  };
}

/** The qwen3.* keys for a config (what llama.cpp's converter writes). */
export function qwen3ToGguf(c: Qwen3Config): [string, GgufValue][] {
  return [
    [k('block_count'), gguf.u32(c.numLayers)],
    [k('context_length'), gguf.u32(c.maxPositionEmbeddings)],
    [k('embedding_length'), gguf.u32(c.hiddenSize)],
    [k('feed_forward_length'), gguf.u32(c.intermediateSize)],
    [k('attention.head_count'), gguf.u32(c.numHeads)],
    [k('attention.head_count_kv'), gguf.u32(c.numKvHeads)],
    // Explicit head width: Qwen3's head_dim is not hidden / heads (128 vs 64 for Qwen3-0.6B).
    [k('attention.key_length'), gguf.u32(c.headDim)],
    [k('attention.value_length'), gguf.u32(c.headDim)],
    [k('rope.freq_base'), gguf.f32(c.ropeTheta)],
    [k('attention.layer_norm_rms_epsilon'), gguf.f32(c.rmsNormEps)],
  ];
}

/** A per-layer count that llama.cpp accepts as one integer or one per layer; Paralon needs one value. */
function perLayerUint(meta: GgufMetadata, key: string): number {
  const v = meta.get(key);
  if (v?.kind === 'array') {
    const values = meta.ints(key);
    if (values.length === 0 || values.some((x) => x !== values[0] || !(x >= 1)))
      throw new Error(`${meta.file}: ${key} differs between layers (${values.join(', ')}); Paralon runs uniform layers`);
    return values[0];
  }
  return meta.uint(key, 1);
}
