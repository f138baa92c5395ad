// Qwen3-MoE: Qwen3MoeForCausalLM (Qwen3-30B-A3B, Qwen3-235B-A22B). Qwen3's attention, and in each
// sparse layer a mixture of experts in place of the dense MLP:
//   rmsnorm → router matmul [T, E] → moeRoute (softmax, top-k, norm_topk_prob) → moeMatmul gate and up
//   (each token through its k experts only) → SwiGLU → moeMatmul down → moeCombine (weighted sum
//   into the residual stream): 8 ops. A layer is sparse unless it is listed in mlp_only_layers or
//   (i + 1) is not a multiple of decoder_sparse_step; the others run the dense SwiGLU MLP of
//   intermediate_size (transformers' Qwen3MoeDecoderLayer).
// Expert weights are stacked at load, one [E · rows, cols] tensor per projection viewed as
// [E, rows, cols], so one moeMatmul reads only the chosen experts' matrices; a GGUF (`qwen3moe`)
// stores them stacked already (ffn_gate_exps …, float or quantized), used in place.
import { ops, type Tensor } from '../runtime/index.js';
import type { Architecture, LayerContext, ModelConfig, WeightSpec } from './architecture.js';
import { stacked, weight } from './architecture.js';
import { qwen3AttentionWeights, qwen3DenseMlpWeights } from './qwen3.js';
import { attentionScratch, mlpScratch, ropeOf, selfAttention, swigluMlp, type AttentionWeights, type SwigluMlpWeights } from './blocks.js';
import { Fields, parseDecoderFields, parseRopeFields, type RopeFields } from './config.js';
import { qwen3MoeConfigFromGguf } from './gguf/qwen3moe-config.js';

export interface Qwen3MoeConfig extends ModelConfig, RopeFields {
  /** The dense MLP width of the layers that are not sparse. */
  intermediateSize: number;
  numExperts: number;
  /** Experts per token (top-k). */
  numExpertsPerTok: number;
  /** Each expert's MLP width. */
  moeIntermediateSize: number;
  /** Renormalise the k routing weights to sum to 1. */
  normTopkProb: boolean;
  /** Every decoderSparseStep-th layer is sparse (1: all). */
  decoderSparseStep: number;
  /** Layers that keep the dense MLP whatever the step says. */
  mlpOnlyLayers: number[];
}

/** A sparse layer's mixture of experts: the router and the experts' stacked projections. */
export interface MoeWeights {
  postAttentionNorm: Tensor;
  /** [E, hidden] */
  router: Tensor;
  /** [E · moeI, hidden] (or [E, moeI, hidden] from a GGUF), viewed [E, moeI, hidden] */
  expertsGate: Tensor;
  expertsUp: Tensor;
  /** [E · hidden, moeI], viewed [E, hidden, moeI] */
  expertsDown: Tensor;
}

export type Qwen3MoeLayer = AttentionWeights & Partial<SwigluMlpWeights> & Partial<MoeWeights>;

/** Whether layer `i` runs the mixture of experts (else the dense MLP). */
export function isSparseLayer(c: Qwen3MoeConfig, i: number): boolean {
  return !c.mlpOnlyLayers.includes(i) && c.numExperts > 0 && (i + 1) % c.decoderSparseStep === 0;
}

/** Validates a parsed config.json of a Qwen3-MoE model; `source` names the file in error messages. */
export function parseQwen3MoeConfig(json: unknown, source = 'config.json'): Qwen3MoeConfig {
  const f = new Fields(json, source);
  const modelType = f.str('model_type', { optional: true });
  if (modelType !== undefined && modelType !== 'qwen3_moe')
    throw new Error(`${source}: model_type is "${modelType}" but architectures names Qwen3MoeForCausalLM (model_type "qwen3_moe")`);
  const base = parseDecoderFields(f, source, 'Qwen3MoeForCausalLM');
  if (f.bool('attention_bias', { optional: true }) === true)
    throw new Error(`${source}: attention_bias is true; Qwen3-MoE has no attention biases and Paralon does not run them`);
  const act = f.str('hidden_act', { optional: true }) ?? 'silu';
  if (act !== 'silu') throw new Error(`${source}: hidden_act is "${act}"; Qwen3-MoE uses "silu"`);
  if (f.bool('use_sliding_window', { optional: true }) === true)
    throw new Error(`${source}: use_sliding_window is true; Paralon runs full attention only`);

  const numExperts = f.int('num_experts', { min: 1 });
  const numExpertsPerTok = f.int('num_experts_per_tok', { min: 1 });
  if (numExpertsPerTok > numExperts)
    throw new Error(`${source}: num_experts_per_tok (${numExpertsPerTok}) exceeds num_experts (${numExperts})`);
  const mlpOnly = f.value('mlp_only_layers') ?? [];
  if (!Array.isArray(mlpOnly) || !mlpOnly.every((i) => Number.isSafeInteger(i) && i >= 0 && i < base.numLayers))
    throw new Error(`${source}: mlp_only_layers must be a list of layer indices below num_hidden_layers (${base.numLayers})`);
  return {
    ...base,
    // The dense layers' width (mlp_only_layers, decoder_sparse_step); Qwen3-MoE configs always state it.
    intermediateSize: f.int('intermediate_size', { min: 1 }),
    numExperts,
    numExpertsPerTok,
    moeIntermediateSize: f.int('moe_intermediate_size', { min: 1 }),
    normTopkProb: f.bool('norm_topk_prob', { optional: true }) ?? false,
    decoderSparseStep: f.int('decoder_sparse_step', { min: 1, optional: true }) ?? 1,
    mlpOnlyLayers: [...new Set(mlpOnly as number[])].sort((a, b) => a - b),
    ...parseRopeFields(f, source, base.maxPositionEmbeddings),
  };
}

/** Scratch floats per token of a sparse layer: router logits, routing ids and weights, gate, up, down. */
function moeScratch(c: Qwen3MoeConfig): number {
  const k = c.numExpertsPerTok;
  return c.numExperts + 2 * k + k * (2 * c.moeIntermediateSize + c.hiddenSize);
}

/** hidden += Σ_j weight_j · expert_j(rmsnorm(hidden)) over each token's top-k experts: 8 ops. */
function moeBlock(ctx: LayerContext<Qwen3MoeConfig, Qwen3MoeLayer>, w: MoeWeights): void {
  const c = ctx.config;
  const T = ctx.numTokens;
  const E = c.numExperts;
  const k = c.numExpertsPerTok;
  const I = c.moeIntermediateSize;
  const H = c.hiddenSize;
  let at = 0;
  const carve = (shape: number[]) => {
    const view = ctx.scratch.view(shape, { offset: at });
    at += shape.reduce((a, b) => a * b, 1);
    return view;
  };
  const logits = carve([T, E]);
  const weights = carve([T, k]);
  const ids = carve([T, k]).view([T, k], { dtype: 'i32' });
  const gate = carve([T, k, I]);
  const up = carve([T, k, I]);
  const down = carve([T, k, H]);

  ops.rmsnorm(ctx.hidden, w.postAttentionNorm, ctx.normed, { eps: c.rmsNormEps });
  ops.matmul(ctx.normed, w.router, logits);
  ops.moeRoute(logits, ids, weights, { renormalize: c.normTopkProb });
  ops.moeMatmul(ctx.normed, w.expertsGate.view([E, I, H]), ids, gate);
  ops.moeMatmul(ctx.normed, w.expertsUp.view([E, I, H]), ids, up);
  ops.swiglu(gate.view([T * k, I]), up.view([T * k, I]), gate.view([T * k, I]));
  ops.moeMatmul(gate, w.expertsDown.view([E, H, I]), ids, down);
  ops.moeCombine(down, weights, ctx.hidden, { residual: ctx.hidden });
}

export const qwen3Moe: Architecture<Qwen3MoeConfig, Qwen3MoeLayer> = {
  names: ['Qwen3MoeForCausalLM'],
  modelTypes: ['qwen3_moe'],
  ggufNames: ['qwen3moe'],
  parseConfig: parseQwen3MoeConfig,
  parseGgufConfig: qwen3MoeConfigFromGguf,

  layerWeights(c, i) {
    const p = `model.layers.${i}.`;
    const H = c.hiddenSize;
    const specs: Record<string, WeightSpec> = qwen3AttentionWeights(c, i);
    if (isSparseLayer(c, i)) {
      const I = c.moeIntermediateSize;
      const experts = (proj: string, shape: number[]) =>
        stacked(
          Array.from({ length: c.numExperts }, (_, e): [string, number[]] => [`${p}mlp.experts.${e}.${proj}.weight`, shape]),
          `${p}mlp.experts.${proj}.weight`,
        );
      specs.router = weight(`${p}mlp.gate.weight`, [c.numExperts, H]);
      specs.expertsGate = experts('gate_proj', [I, H]);
      specs.expertsUp = experts('up_proj', [I, H]);
      specs.expertsDown = experts('down_proj', [H, I]);
    } else {
      Object.assign(specs, qwen3DenseMlpWeights(c, i));
    }
    return specs as Record<keyof Qwen3MoeLayer & string, WeightSpec>;
  },

  // qkNormRope reads both norm weights with one dtype.
  sameDtype: [['qNorm', 'kNorm']],

  scratchWidth(c) {
    const dense = Array.from({ length: c.numLayers }, (_, i) => i).some((i) => !isSparseLayer(c, i));
    return Math.max(attentionScratch(c), moeScratch(c), dense ? mlpScratch(c.intermediateSize) : 0);
  },

  forwardLayers(ctx: LayerContext<Qwen3MoeConfig, Qwen3MoeLayer>) {
    const c = ctx.config;
    const rope = ropeOf(c);
    ctx.weights.layers.forEach((lw, l) => {
      selfAttention(ctx, lw, l, rope);
      if (isSparseLayer(c, l)) moeBlock(ctx, lw as Qwen3MoeLayer & MoeWeights);
      else swigluMlp(ctx, lw as Qwen3MoeLayer & SwigluMlpWeights, c.intermediateSize);
    });
  },
};
