// Building blocks of decoder layers, shared by the architectures (llama.cpp's build_* helpers): each
// queues one sub-block of a layer on the device, reading `ctx.hidden` and accumulating into it.
import { ops, ropeFrequencies, type RopeFrequencies, type Tensor } from '../runtime/index.js';
import type { LayerContext, ModelConfig } from './architecture.js';
import type { RopeFields } from './config.js';

/** A pre-norm self-attention block's weights: q/k/v read by one fused matmul. */
export interface AttentionWeights {
  inputNorm: Tensor;
  /** The q, k and v projections: one stacked [qDim + 2·kvDim, hidden] matrix, or the three of them. */
  qkv: Tensor | Tensor[];
  o: Tensor;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3); absent: plain RoPE. */
  qNorm?: Tensor;
  kNorm?: Tensor;
}

const ropeCache = new WeakMap<object, RopeFrequencies>();

/** The config's RoPE frequencies (plain or YaRN), computed once per config. */
export function ropeOf(c: ModelConfig & RopeFields): RopeFrequencies {
  let rope = ropeCache.get(c);
  if (!rope) {
    rope = ropeFrequencies(c.headDim, { theta: c.ropeTheta, scaling: c.ropeScaling });
    ropeCache.set(c, rope);
  }
  return rope;
}

/** Scratch floats per token that selfAttention uses: q, k, v and the attention output. */
export function attentionScratch(c: ModelConfig): number {
  return 2 * c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim;
}

/**
 * hidden += o_proj(attention(rope(norm(q)), rope(norm(k)), v)) over the paged cache of layer `l`, where
 * q, k, v = split(normed · qkvᵀ), normed = rmsnorm(hidden): 6 ops.
 */
export function selfAttention<C extends ModelConfig>(ctx: LayerContext<C, unknown>, w: AttentionWeights, l: number, rope: RopeFrequencies): void {
  const c = ctx.config;
  const T = ctx.numTokens;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const q = ctx.scratch.view([T, qDim]);
  const k = ctx.scratch.view([T, kvDim], { offset: T * qDim });
  const v = ctx.scratch.view([T, kvDim], { offset: T * (qDim + kvDim) });
  const attn = ctx.scratch.view([T, qDim], { offset: T * (qDim + 2 * kvDim) });
  const q3 = q.view([T, c.numHeads, c.headDim]);
  const k3 = k.view([T, c.numKvHeads, c.headDim]);
  const cache = ctx.kv.layers[l];

  ops.rmsnorm(ctx.hidden, w.inputNorm, ctx.normed, { eps: c.rmsNormEps });
  ops.matmul(ctx.normed, w.qkv, [q, k, v]);
  ops.qkNormRope(q3, k3, ctx.meta.positions, { rope, eps: c.rmsNormEps, qWeight: w.qNorm, kWeight: w.kNorm });
  ops.kvWrite(cache, k3, v.view([T, c.numKvHeads, c.headDim]), ctx.meta.slots);
  ops.attention(cache, q3, attn.view([T, c.numHeads, c.headDim]), ctx.meta.attention, { scale: 1 / Math.sqrt(c.headDim) });
  ops.matmul(attn, w.o, ctx.hidden, { residual: ctx.hidden });
}

/** A pre-norm SwiGLU MLP's weights: gate/up read by one fused matmul. */
export interface SwigluMlpWeights {
  postAttentionNorm: Tensor;
  /** The gate and up projections: one stacked [2·intermediate, hidden] matrix, or the two of them. */
  gateUp: Tensor | Tensor[];
  down: Tensor;
}

/** Scratch floats per token that swigluMlp uses: gate and up. */
export function mlpScratch(intermediateSize: number): number {
  return 2 * intermediateSize;
}

const fusedSwiglu = new WeakMap<SwigluMlpWeights, boolean>();

/** Whether the device runs gate/up with the SwiGLU epilogue (one dtype for both, asked once per layer). */
function canFuseSwiglu(w: SwigluMlpWeights): boolean {
  let fused = fusedSwiglu.get(w);
  if (fused === undefined) {
    const parts = Array.isArray(w.gateUp) ? w.gateUp : [w.gateUp];
    fused = (parts.length === 1 || (parts.length === 2 && parts[0].dtype === parts[1].dtype))
      && parts[0].device.supports('matmulSwiglu', parts[0].dtype);
    fusedSwiglu.set(w, fused);
  }
  return fused;
}

/**
 * hidden += down(silu(gate) · up), gate, up = split(rmsnorm(hidden) · gateUpᵀ): 3 ops where the device
 * fuses SwiGLU into the gate/up matmul's store (the [T, 2·I] product is never written), else 4.
 */
export function swigluMlp<C extends ModelConfig>(ctx: LayerContext<C, unknown>, w: SwigluMlpWeights, intermediateSize: number): void {
  const T = ctx.numTokens;
  const I = intermediateSize;
  const gate = ctx.scratch.view([T, I]);
  ops.rmsnorm(ctx.hidden, w.postAttentionNorm, ctx.normed, { eps: ctx.config.rmsNormEps });
  if (canFuseSwiglu(w)) {
    ops.matmul(ctx.normed, w.gateUp, gate, { epilogue: 'swiglu' });
  } else {
    const up = ctx.scratch.view([T, I], { offset: T * I });
    ops.matmul(ctx.normed, w.gateUp, [gate, up]);
    ops.swiglu(gate, up, gate);
  }
  ops.matmul(gate, w.down, ctx.hidden, { residual: ctx.hidden });
}
