// Qwen3-MoE's hyper-parameters in GGUF, llama.cpp's architecture `qwen3moe` (models/qwen3moe.cpp and
// convert_hf_to_gguf's Qwen2MoeModel/Qwen3MoeModel): the Qwen3 family's keys (qwen3-config.ts) plus
// expert_count (num_experts), expert_used_count (num_experts_per_tok), expert_feed_forward_length
// (moe_intermediate_size; llama.cpp falls back to feed_forward_length / expert_used_count) and
// feed_forward_length (intermediate_size). llama.cpp's qwen3moe makes every layer sparse and always
// renormalises the top-k weights (norm_topk_prob), with softmax routing; a file stating otherwise
// (expert_weights_norm, expert_gating_func) is read as it says or refused by name.
import type { GgufModelFacts } from '../architecture.js';
import type { Qwen3MoeConfig } from '../qwen3-moe.js';
import type { GgufMetadata } from './metadata.js';
import { perLayerUint, qwen3FamilyFromGguf, qwen3FamilyToGguf } from './qwen3-config.js';
import { gguf, type GgufValue } from './types.js';

export const QWEN3MOE_GGUF_ARCHITECTURE = 'qwen3moe';
const k = (name: string) => `${QWEN3MOE_GGUF_ARCHITECTURE}.${name}`;
/** llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX. */
const GATING_SOFTMAX = 1;

/** The Qwen3MoeConfig a qwen3moe GGUF describes. */
export function qwen3MoeConfigFromGguf(meta: GgufMetadata, facts: GgufModelFacts): Qwen3MoeConfig {
  const base = qwen3FamilyFromGguf(meta, facts, QWEN3MOE_GGUF_ARCHITECTURE, 'Qwen3MoeForCausalLM');
  const numExperts = meta.uint(k('expert_count'), 1);
  const numExpertsPerTok = meta.uint(k('expert_used_count'), 1);
  if (numExpertsPerTok > numExperts)
    throw new Error(`${meta.file}: ${k('expert_used_count')} (${numExpertsPerTok}) exceeds ${k('expert_count')} (${numExperts})`);
  const gating = meta.uint(k('expert_gating_func'), 0, true);
  if (gating !== undefined && gating !== GATING_SOFTMAX)
    throw new Error(`${meta.file}: ${k('expert_gating_func')} is ${gating}; Qwen3-MoE routes by softmax (${GATING_SOFTMAX})`);
  const ff = meta.has(k('feed_forward_length')) ? perLayerUint(meta, k('feed_forward_length')) : undefined;
  let moeIntermediateSize: number;
  if (meta.has(k('expert_feed_forward_length'))) moeIntermediateSize = perLayerUint(meta, k('expert_feed_forward_length'));
  else if (ff !== undefined && ff % numExpertsPerTok === 0) moeIntermediateSize = ff / numExpertsPerTok;
  else throw new Error(`${meta.file}: missing metadata key ${k('expert_feed_forward_length')}`);
  return {
    ...base,
    // Only dense layers use it, and a qwen3moe file has none.
    intermediateSize: ff ?? moeIntermediateSize,
    numExperts,
    numExpertsPerTok,
    moeIntermediateSize,
    normTopkProb: meta.bool(k('expert_weights_norm')) ?? true,
    decoderSparseStep: 1,
    mlpOnlyLayers: [],
  };
}

/** The qwen3moe.* keys for a config; refuses what llama.cpp's qwen3moe cannot run (dense layers, unnormalised top-k). */
export function qwen3MoeToGguf(c: Qwen3MoeConfig): [string, GgufValue][] {
  if (c.mlpOnlyLayers.length > 0 || c.decoderSparseStep !== 1)
    throw new Error(
      `GGUF export: qwen3moe makes every layer sparse; this config has dense layers (mlp_only_layers [${c.mlpOnlyLayers.join(', ')}], decoder_sparse_step ${c.decoderSparseStep})`,
    );
  if (!c.normTopkProb)
    throw new Error('GGUF export: norm_topk_prob is false; llama.cpp\'s qwen3moe always renormalises the top-k routing weights');
  return [
    ...qwen3FamilyToGguf(c, QWEN3MOE_GGUF_ARCHITECTURE),
    [k('feed_forward_length'), gguf.u32(c.intermediateSize)],
    [k('expert_count'), gguf.u32(c.numExperts)],
    [k('expert_used_count'), gguf.u32(c.numExpertsPerTok)],
    [k('expert_feed_forward_length'), gguf.u32(c.moeIntermediateSize)],
  ];
}
