// The op contract (native/ops.h) as typed functions. Each op queues on the device of its tensors and
// returns at once; arguments are validated synchronously and errors name the op ("matmul: ...").
import type { Tensor } from './tensor.js';

/** One layer's paged KV cache: K and V pools of [numBlocks, blockSize, numKvHeads, headDim], f32 or bf16. */
export interface KvCache {
  k: Tensor;
  v: Tensor;
}

/** A batch of sequences for attention (see native/ops.h AttentionArgs). */
export interface AttentionBatch {
  /** [numSeqs + 1] query row boundaries; qStart[0] = 0, last = number of query tokens. */
  qStart: Int32Array;
  /** [numSeqs] tokens in the cache per sequence, the new ones included. */
  kvLen: Int32Array;
  /** [numSeqs × maxBlocksPerSeq] block ids of each sequence. */
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
}

export interface SamplingRow {
  /** 0 = greedy. */
  temperature: number;
  /** ≤ 0: off. */
  topK?: number;
  /** 1: off. */
  topP?: number;
  /** 0: off. */
  minP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** 1: off. */
  repetitionPenalty?: number;
  /** With offset, fixes the draw: same seed, offset and logits → same token. */
  seed?: number;
  /** The row's step counter (tokens generated so far). */
  offset?: number;
  /** Unique token ids seen in prompt or output, with their output counts (0 = prompt only). */
  penaltyTokens?: Int32Array;
  penaltyCounts?: Int32Array;
}

export interface SampleResult {
  tokens: Int32Array;
  /** Log-probability of each chosen token under the raw logits. */
  logprobs: Float32Array;
  /** [rows × numTop] most likely tokens of the raw distribution, descending. */
  topTokens: Int32Array;
  topLogprobs: Float32Array;
}

function nativeOf(t: Tensor | null | undefined) {
  return t ? t.native : null;
}

/** dst = src, byte for byte (same size; any dtype and shape). */
export function copy(dst: Tensor, src: Tensor): Tensor {
  dst.device.native.copy(dst.native, src.native);
  return dst;
}

/** out[t] = table[ids[t]] as f32 (also a row gather of an f32 activation). */
export function embedding(ids: Int32Array, table: Tensor, out: Tensor): Tensor {
  out.device.native.embedding(ids, table.native, out.native);
  return out;
}

/**
 * out = x · wᵀ (+ residual; residual may be `out` itself for an in-place accumulate). With a list of
 * up to 3 outputs, w stacks several weights (a fused projection) and output j receives the next
 * columns of the product, as many as it has: `matmul(normed, qkv, [q, k, v])` reads x once.
 */
export function matmul<T extends Tensor | Tensor[]>(x: Tensor, w: Tensor, out: T, options: { residual?: Tensor } = {}): T {
  const device = Array.isArray(out) ? x.device : out.device;
  device.native.matmul(x.native, w.native, Array.isArray(out) ? out.map((t) => t.native) : out.native, nativeOf(options.residual));
  return out;
}

/** out = rmsnorm(x + residual) · weight; sumOut (optional) receives x + residual. */
export function rmsnorm(
  x: Tensor,
  weight: Tensor,
  out: Tensor,
  options: { eps: number; residual?: Tensor; sumOut?: Tensor },
): Tensor {
  out.device.native.rmsnorm(x.native, nativeOf(options.residual), nativeOf(options.sumOut), weight.native, out.native,
    options.eps);
  return out;
}

/** In place on q [T, Hq, D] and k [T, Hkv, D]: per-head RMSNorm (when weights are given), then rotate-half RoPE. */
export function qkNormRope(
  q: Tensor,
  k: Tensor,
  positions: Int32Array,
  options: { theta: number; eps?: number; qWeight?: Tensor; kWeight?: Tensor },
): void {
  q.device.native.qkNormRope(q.native, k.native, nativeOf(options.qWeight), nativeOf(options.kWeight), positions,
    options.eps ?? 1e-6, options.theta);
}

/** out = silu(gate) · up. */
export function swiglu(gate: Tensor, up: Tensor, out: Tensor): Tensor {
  out.device.native.swiglu(gate.native, up.native, out.native);
  return out;
}

/** Writes k, v [T, Hkv, D] into cache slots (slot = block · blockSize + offset). */
export function kvWrite(cache: KvCache, k: Tensor, v: Tensor, slots: Int32Array): void {
  k.device.native.kvWrite(cache.k.native, cache.v.native, k.native, v.native, slots);
}

/** Causal paged attention for a batch of sequences (prefill chunks and decodes alike). */
export function attention(
  cache: KvCache,
  q: Tensor,
  out: Tensor,
  batch: AttentionBatch,
  options: { scale?: number } = {},
): Tensor {
  const scale = options.scale ?? 1 / Math.sqrt(q.shape[q.shape.length - 1]);
  out.device.native.attention(cache.k.native, cache.v.native, q.native, out.native, batch.qStart, batch.kvLen,
    batch.blockTables, batch.maxBlocksPerSeq, scale);
  return out;
}

/** Samples one token per row of logits [rows, vocab] (used as scratch); only ids and logprobs come back. */
export function sample(logits: Tensor, rows: readonly SamplingRow[], options: { numTop?: number } = {}): Promise<SampleResult> {
  const params = new Float64Array(rows.length * 9);
  const start = new Int32Array(rows.length + 1);
  let total = 0;
  rows.forEach((r, i) => {
    params.set(
      [r.temperature, r.topK ?? 0, r.topP ?? 1, r.minP ?? 0, r.presencePenalty ?? 0, r.frequencyPenalty ?? 0,
        r.repetitionPenalty ?? 1, r.seed ?? 0, r.offset ?? 0],
      i * 9,
    );
    const n = r.penaltyTokens?.length ?? 0;
    if ((r.penaltyCounts?.length ?? 0) !== n) throw new Error('sample: penaltyTokens and penaltyCounts differ in length');
    total += n;
    start[i + 1] = total;
  });
  const tokens = new Int32Array(total);
  const counts = new Int32Array(total);
  rows.forEach((r, i) => {
    if (r.penaltyTokens) tokens.set(r.penaltyTokens, start[i]);
    if (r.penaltyCounts) counts.set(r.penaltyCounts, start[i]);
  });
  return logits.device.native.sample(logits.native, params, start, tokens, counts, options.numTop ?? 0);
}
