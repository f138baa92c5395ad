// float64 references for the paged KV cache of native/ops.h: kv_write and causal attention over
// block tables (varlen batches, GQA, prefill chunks after cached tokens, decodes).

/** Geometry of one layer's cache: K and V pools of [numBlocks, blockSize, numKvHeads, headDim]. */
export interface CacheShape {
  numBlocks: number;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
}

export function cacheNumel(c: CacheShape): number {
  return c.numBlocks * c.blockSize * c.numKvHeads * c.headDim;
}

/** The pools after cache[slots[t]] = k[t], v[t] (k, v: [T, Hkv, D]); the inputs are not modified. */
export function kvWriteRef(
  cache: CacheShape,
  kPool: ArrayLike<number>,
  vPool: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  slots: ArrayLike<number>,
): { k: Float64Array; v: Float64Array } {
  const row = cache.numKvHeads * cache.headDim;
  const kOut = Float64Array.from(kPool);
  const vOut = Float64Array.from(vPool);
  for (let t = 0; t < slots.length; t++) {
    for (let j = 0; j < row; j++) {
      kOut[slots[t] * row + j] = k[t * row + j];
      vOut[slots[t] * row + j] = v[t * row + j];
    }
  }
  return { k: kOut, v: vOut };
}

export interface AttentionRefArgs {
  cache: CacheShape;
  kPool: ArrayLike<number>;
  vPool: ArrayLike<number>;
  /** [T, numQHeads, headDim] */
  q: ArrayLike<number>;
  numQHeads: number;
  /** [numSeqs + 1] */
  qStart: ArrayLike<number>;
  /** [numSeqs] */
  kvLen: ArrayLike<number>;
  /** [numSeqs × maxBlocksPerSeq] */
  blockTables: ArrayLike<number>;
  maxBlocksPerSeq: number;
  scale: number;
}

/**
 * out [T, Hq, D]: query i of sequence s (q_len new tokens) sits at position kvLen − q_len + i and
 * attends keys 0..position, key j read from block blockTables[s][j / blockSize], offset j % blockSize;
 * query head h reads KV head h / (Hq / Hkv). Softmax in float64 with the max subtracted.
 */
export function attentionRef(a: AttentionRefArgs): Float64Array {
  const { blockSize, numKvHeads: Hkv, headDim: D } = a.cache;
  const Hq = a.numQHeads;
  const group = Hq / Hkv;
  const out = new Float64Array(a.q.length);
  const numSeqs = a.kvLen.length;
  const keyAt = (s: number, j: number, kvh: number) =>
    ((a.blockTables[s * a.maxBlocksPerSeq + Math.floor(j / blockSize)] * blockSize + (j % blockSize)) * Hkv + kvh) * D;
  for (let s = 0; s < numSeqs; s++) {
    const qLen = a.qStart[s + 1] - a.qStart[s];
    for (let i = 0; i < qLen; i++) {
      const t = a.qStart[s] + i;
      const pos = a.kvLen[s] - qLen + i;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / group);
        const qBase = (t * Hq + h) * D;
        const scores = new Float64Array(pos + 1);
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          const kBase = keyAt(s, j, kvh);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += a.q[qBase + d] * a.kPool[kBase + d];
          scores[j] = dot * a.scale;
          max = Math.max(max, scores[j]);
        }
        let denom = 0;
        for (let j = 0; j <= pos; j++) denom += (scores[j] = Math.exp(scores[j] - max));
        for (let j = 0; j <= pos; j++) {
          const vBase = keyAt(s, j, kvh);
          const p = scores[j] / denom;
          for (let d = 0; d < D; d++) out[qBase + d] += p * a.vPool[vBase + d];
        }
      }
    }
  }
  return out;
}
