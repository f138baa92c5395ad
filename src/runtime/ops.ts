// The op contract (native/ops.h) as typed functions. Each op queues on the device of its tensors and
// returns at once; arguments are validated synchronously and errors name the op ("matmul: ...").
import { addon } from './native.js';
import type { RopeFrequencies } from './rope.js';
import type { Tensor } from './tensor.js';

/** One layer's paged KV cache: K and V pools of [numBlocks, blockSize, numKvHeads, headDim], f32, bf16,
 *  f16 or fp8 (e4m3). */
export interface KvCache {
  k: Tensor;
  v: Tensor;
  /** fp8 only: per-tensor scales [k, v]; a stored element e means e · scale (default [1, 1]). */
  scales?: Float64Array;
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

/**
 * The numeric sampling parameters of one row, in the order the addon reads them from the params
 * Float64Array (native/ops.h PARALON_SAMPLING_FIELDS). The addon exports its own list as
 * `sampleParamFields`; this module refuses to load against an addon whose list differs.
 */
export const SAMPLE_PARAM_FIELDS = [
  'temperature', 'topK', 'topP', 'minP', 'presencePenalty', 'frequencyPenalty', 'repetitionPenalty', 'seed', 'offset',
] as const;
export type SampleParamField = (typeof SAMPLE_PARAM_FIELDS)[number];

/** The value that turns each optional parameter off. */
export const SAMPLE_PARAM_OFF: Omit<Record<SampleParamField, number>, 'temperature'> = {
  topK: 0, topP: 1, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 0, offset: 0,
};

/** Throws unless the addon reads a params row in SAMPLE_PARAM_FIELDS' order. */
export function checkSampleParamLayout(native: readonly string[]): void {
  const ours = SAMPLE_PARAM_FIELDS.join(', ');
  if (native.join(', ') !== ours)
    throw new Error(`the native addon's sampling parameters (${native.join(', ')}) differ from src/runtime/ops.ts's ` +
      `(${ours}): rebuild the addon (npm run build:native)`);
}
checkSampleParamLayout(addon.sampleParamFields);

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
  /** Logit bias: unique token ids (< vocab) and the values added to their logits (before the mask). */
  biasTokens?: Int32Array;
  biasValues?: ArrayLike<number>;
  /**
   * Allowed tokens: Int32Array of ceil(vocab / 32) words, bit (t & 31) of word (t >> 5) set = token t
   * allowed (xgrammar's layout); the others get −∞. Must allow at least one token.
   */
  allowedMask?: Int32Array;
}

export interface SampleResult {
  tokens: Int32Array;
  /** Log-probability of each chosen token under the raw logits. */
  logprobs: Float32Array;
  /** [rows × numTop] most likely tokens of the raw distribution, descending. */
  topTokens: Int32Array;
  topLogprobs: Float32Array;
  /** With `targets`: each target's logprob under the raw logits (NaN in rows without one); else empty. */
  targetLogprobs: Float32Array;
  /** With `targets`: 1 + the tokens whose raw logit is strictly larger (0 in rows without one); else empty. */
  targetRanks: Int32Array;
}

function nativeOf(t: Tensor | null | undefined) {
  return t ? t.native : null;
}

/** dst = src, byte for byte (same size; any dtype and shape). */
export function copy(dst: Tensor, src: Tensor): Tensor {
  dst.device.native.copy(dst.native, src.native);
  return dst;
}

/** out[t] = table[ids[t]] as f32 (also a row gather of an f32 activation); the table may be quantized. */
export function embedding(ids: Int32Array, table: Tensor, out: Tensor): Tensor {
  out.device.native.embedding(ids, table.native, out.native);
  return out;
}

/**
 * out = x · wᵀ (+ residual; residual may be `out` itself for an in-place accumulate); w in f32, bf16,
 * f16 or ggml blocks (q8_0, q4_k, q5_k, q6_k — see Device.supports). With a list of
 * up to 3 outputs (a fused projection: one op reads x once), output j receives the next columns of
 * the product, as many as it has: w is one stacked matrix, or one matrix per output, each in its own
 * dtype — `matmul(normed, [wq, wk, wv], [q, k, v])`.
 *
 * `epilogue: 'swiglu'` (an MLP's gate/up projection with its activation in the store, where
 * `device.supports('matmulSwiglu', dtype)`): w is one stacked [2·I, K] matrix (gate rows first) or
 * [wGate, wUp] in one dtype, out is one [M, I] tensor and receives silu(x·wGateᵀ) · (x·wUpᵀ); the
 * [M, 2·I] product is never written. No residual.
 */
export function matmul<T extends Tensor | Tensor[]>(
  x: Tensor, w: Tensor | readonly Tensor[], out: T, options: { residual?: Tensor; epilogue?: 'swiglu' } = {},
): T {
  const natives = (t: Tensor | readonly Tensor[]) => (Array.isArray(t) ? t.map((p: Tensor) => p.native) : (t as Tensor).native);
  x.device.native.matmul(x.native, natives(w), natives(out), nativeOf(options.residual), options.epilogue);
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

/**
 * In place on q [T, Hq, D] and k [T, Hkv, D]: per-head RMSNorm (when weights are given), then rotate-half
 * RoPE with `rope` (from ropeFrequencies: plain or YaRN).
 */
export function qkNormRope(
  q: Tensor,
  k: Tensor,
  positions: Int32Array,
  options: { rope: RopeFrequencies; eps?: number; qWeight?: Tensor; kWeight?: Tensor },
): void {
  q.device.native.qkNormRope(q.native, k.native, nativeOf(options.qWeight), nativeOf(options.kWeight), positions,
    options.eps ?? 1e-6, options.rope.invFreq, options.rope.attentionFactor);
}

/** out = silu(gate) · up. */
export function swiglu(gate: Tensor, up: Tensor, out: Tensor): Tensor {
  out.device.native.swiglu(gate.native, up.native, out.native);
  return out;
}

/** Writes k, v [T, Hkv, D] into cache slots (slot = block · blockSize + offset). */
export function kvWrite(cache: KvCache, k: Tensor, v: Tensor, slots: Int32Array): void {
  k.device.native.kvWrite(cache.k.native, cache.v.native, k.native, v.native, slots, cache.scales);
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
    batch.blockTables, batch.maxBlocksPerSeq, scale, cache.scales);
  return out;
}

/**
 * Mixture-of-experts routing: softmax over each row of router logits [T, E], the top-k experts into
 * ids [T, k] (equal logits: lower expert first) and their probabilities into weights [T, k]
 * (renormalized to sum to 1 over the k when `renormalize`: Qwen3-MoE's norm_topk_prob).
 */
export function moeRoute(logits: Tensor, ids: Tensor, weights: Tensor, options: { renormalize: boolean }): void {
  logits.device.native.moeRoute(logits.native, ids.native, weights.native, options.renormalize);
}

/**
 * Expert-grouped matmul: y[t, j] = x_t · w[ids[t, j]]ᵀ for w [E, N, K], x [T, K] (one row per token,
 * shared by its k slots) or [T, k, K] (one row per slot); y [T, k, N]. Each chosen expert's matrix is
 * read once per call however many tokens chose it.
 */
export function moeMatmul(x: Tensor, w: Tensor, ids: Tensor, y: Tensor): Tensor {
  y.device.native.moeMatmul(x.native, w.native, ids.native, y.native);
  return y;
}

/** out[t] = residual[t] + Σ_j weights[t, j] · y[t, j] (y [T, k, N]); residual may be `out` itself. */
export function moeCombine(y: Tensor, weights: Tensor, out: Tensor, options: { residual?: Tensor } = {}): Tensor {
  out.device.native.moeCombine(y.native, weights.native, out.native, nativeOf(options.residual));
  return out;
}

/** Concatenates per-row lists into CSR form: starts [rows + 1] and the entries. */
function csr<T>(lists: readonly (ArrayLike<T> | undefined)[]): { start: Int32Array; entries: T[] } {
  const start = new Int32Array(lists.length + 1);
  const entries: T[] = [];
  lists.forEach((list, i) => {
    if (list) for (let j = 0; j < list.length; j++) entries.push(list[j]);
    start[i + 1] = entries.length;
  });
  return { start, entries };
}

/**
 * Samples one token per row of logits [rows, vocab] (used as scratch); only ids and logprobs come back.
 * Logprobs are those of the raw logits: before bias, mask, penalties and temperature. `targets` (one
 * token id per row, −1: none) are scored beside the draw: their raw logprob and rank (prompt logprobs).
 */
export function sample(
  logits: Tensor,
  rows: readonly SamplingRow[],
  options: { numTop?: number; targets?: Int32Array } = {},
): Promise<SampleResult> {
  const width = SAMPLE_PARAM_FIELDS.length;
  const params = new Float64Array(rows.length * width);
  rows.forEach((r, i) => {
    SAMPLE_PARAM_FIELDS.forEach((field, j) => {
      params[i * width + j] = field === 'temperature' ? r.temperature : (r[field] ?? SAMPLE_PARAM_OFF[field]);
    });
    if ((r.penaltyCounts?.length ?? 0) !== (r.penaltyTokens?.length ?? 0))
      throw new Error(`sample: penaltyTokens and penaltyCounts differ in length (row ${i})`);
    if ((r.biasValues?.length ?? 0) !== (r.biasTokens?.length ?? 0))
      throw new Error(`sample: biasTokens and biasValues differ in length (row ${i})`);
  });
  const penalties = csr(rows.map((r) => r.penaltyTokens));
  const counts = csr(rows.map((r) => r.penaltyCounts));
  const bias = csr(rows.map((r) => r.biasTokens));
  const biasValues = csr(rows.map((r) => r.biasValues));
  const masked = rows.filter((r) => r.allowedMask);
  const maskRow = new Int32Array(masked.length > 0 ? rows.length : 0);
  const masks = new Int32Array(masked.reduce((n, r) => n + r.allowedMask!.length, 0));
  let numMasks = 0;
  let at = 0;
  const words = Math.ceil(logits.shape[logits.shape.length - 1] / 32);
  rows.forEach((r, i) => {
    if (masked.length === 0) return;
    if (!r.allowedMask) {
      maskRow[i] = -1;
      return;
    }
    if (r.allowedMask.length !== words)
      throw new Error(`sample: the allowedMask of row ${i} has ${r.allowedMask.length} words; ceil(vocab / 32) = ${words}`);
    masks.set(r.allowedMask, at);
    at += r.allowedMask.length;
    maskRow[i] = numMasks++;
  });
  return logits.device.native.sample(logits.native, params, penalties.start, Int32Array.from(penalties.entries),
    Int32Array.from(counts.entries), bias.start, Int32Array.from(bias.entries), Float64Array.from(biasValues.entries),
    maskRow, masks, options.numTop ?? 0, options.targets ?? new Int32Array(0));
}
