// Qwen3 (dense): Qwen3ForCausalLM. Its config fields, its weights and its layer loop:
//   per layer [rmsnorm → qkv matmul → QK-norm + RoPE → kv write → paged attention → o_proj + residual
//   → rmsnorm → gate/up matmul → SwiGLU → down_proj + residual]: 10 ops.
import type { Architecture, LayerContext, ModelConfig, WeightSpec } from './architecture.js';
import { parts, weight } from './architecture.js';
import { attentionScratch, mlpScratch, ropeOf, selfAttention, swigluMlp, type AttentionWeights, type SwigluMlpWeights } from './blocks.js';
import { Fields, parseDecoderFields, parseRopeFields, type RopeFields } from './config.js';
import { qwen3ConfigFromGguf } from './gguf/qwen3-config.js';

/** A dense Qwen3 decoder, in Paralon's names (maxPositionEmbeddings: factor × original under YaRN). */
export interface Qwen3Config extends ModelConfig, RopeFields {
  intermediateSize: number;
}

export type Qwen3Layer = AttentionWeights & SwigluMlpWeights;

/** Validates a parsed config.json of a dense Qwen3; `source` names the file in error messages. */
export function parseQwen3Config(json: unknown, source = 'config.json'): Qwen3Config {
  const f = new Fields(json, source);
  const modelType = f.str('model_type', { optional: true });
  if (modelType !== undefined && modelType !== 'qwen3')
    throw new Error(`${source}: model_type is "${modelType}" but architectures names Qwen3ForCausalLM (model_type "qwen3")`);
  const base = parseDecoderFields(f, source, 'Qwen3ForCausalLM');

  if (f.bool('attention_bias', { optional: true }) === true)
    throw new Error(`${source}: attention_bias is true; Qwen3 has no attention biases and Paralon does not run them`);
  const act = f.str('hidden_act', { optional: true }) ?? 'silu';
  if (act !== 'silu') throw new Error(`${source}: hidden_act is "${act}"; Qwen3 uses "silu"`);
  if (f.bool('use_sliding_window', { optional: true }) === true)
    throw new Error(`${source}: use_sliding_window is true; Paralon runs full attention only`);

  return {
    ...base,
    intermediateSize: f.int('intermediate_size', { min: 1 }),
    ...parseRopeFields(f, source, base.maxPositionEmbeddings),
  };
}

/** A Qwen3 layer's attention weights (norm, q/k/v, o, q/k norms), shared with Qwen3-MoE. */
export function qwen3AttentionWeights(c: ModelConfig, i: number): Record<keyof AttentionWeights | 'postAttentionNorm', WeightSpec> {
  const p = `model.layers.${i}.`;
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  return {
    inputNorm: weight(`${p}input_layernorm.weight`, [H]),
    qkv: parts([
      [`${p}self_attn.q_proj.weight`, [qDim, H]],
      [`${p}self_attn.k_proj.weight`, [kvDim, H]],
      [`${p}self_attn.v_proj.weight`, [kvDim, H]],
    ]),
    o: weight(`${p}self_attn.o_proj.weight`, [H, qDim]),
    qNorm: weight(`${p}self_attn.q_norm.weight`, [c.headDim]),
    kNorm: weight(`${p}self_attn.k_norm.weight`, [c.headDim]),
    postAttentionNorm: weight(`${p}post_attention_layernorm.weight`, [H]),
  };
}

/** A Qwen3 layer's dense SwiGLU MLP weights (gate/up, down), shared with Qwen3-MoE's dense layers. */
export function qwen3DenseMlpWeights(c: ModelConfig & { intermediateSize: number }, i: number): Record<'gateUp' | 'down', WeightSpec> {
  const p = `model.layers.${i}.`;
  return {
    gateUp: parts([
      [`${p}mlp.gate_proj.weight`, [c.intermediateSize, c.hiddenSize]],
      [`${p}mlp.up_proj.weight`, [c.intermediateSize, c.hiddenSize]],
    ]),
    down: weight(`${p}mlp.down_proj.weight`, [c.hiddenSize, c.intermediateSize]),
  };
}

export const qwen3: Architecture<Qwen3Config, Qwen3Layer> = {
  names: ['Qwen3ForCausalLM'],
  modelTypes: ['qwen3'],
  ggufNames: ['qwen3'],
  parseConfig: parseQwen3Config,
  parseGgufConfig: qwen3ConfigFromGguf,

  layerWeights: (c, i) => ({ ...qwen3AttentionWeights(c, i), ...qwen3DenseMlpWeights(c, i) }),

  // qkNormRope reads both norm weights with one dtype.
  sameDtype: [['qNorm', 'kNorm']],

  scratchWidth: (c) => Math.max(attentionScratch(c), mlpScratch(c.intermediateSize)),

  forwardLayers(ctx: LayerContext<Qwen3Config, Qwen3Layer>) {
    const c = ctx.config;
    ctx.weights.layers.forEach((lw, l) => {
      selfAttention(ctx, lw, l, ropeOf(c));
      swigluMlp(ctx, lw, c.intermediateSize);
    });
  },
};
