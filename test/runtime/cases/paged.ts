// Table rows for the paged KV cache: kvWrite into scattered slots, and attention over shuffled
// block tables for prefills, prefill chunks after cached tokens, decode batches and mixes of them.
import { ops, type Device } from '../../../src/runtime/index.js';
import { fp8Bits, fp8Value } from '../../../src/runtime/dtype.js';
import { attentionRef, cacheNumel, kvWriteRef, type CacheShape } from '../../reference/attention.js';
import { TOLERANCE } from '../../reference/compare.js';
import { poisoned } from '../../reference/poison.js';
import { Rng } from '../../reference/random.js';
import { storedAs } from '../../reference/rounding.js';
import { caseName, isCuda, once, type OpCase } from './op_case.js';

type CacheType = 'f32' | 'bf16' | 'f16' | 'fp8';
const BLOCK_SIZE = 16;
/** The fp8 cases' per-tensor scales (not powers of two, so that a missing or doubled scale shows). */
const FP8_SCALES = { k: 0.37, v: 1.9 };

/** Whole pools filled with random values (stale tokens and unused blocks included). */
function randomPools(rng: Rng, cache: CacheShape) {
  return { k: rng.normals(cacheNumel(cache)), v: rng.normals(cacheNumel(cache)) };
}

/**
 * fp8 inputs stress e4m3's range: about 1 in 16 values is scaled past ±448·scale (saturates) and 1 in
 * 16 below 2^-6·scale (subnormal steps), around 2^-10·scale (rounds to 0 or the smallest step).
 */
function adversarialFp8(values: Float32Array, rng: Rng): Float32Array {
  for (let i = 0; i < values.length; i++) {
    const r = rng.uniform();
    if (r < 1 / 16) values[i] *= 600;
    else if (r < 2 / 16) values[i] *= 0.004;
  }
  return values;
}

/** fp8: a value x written with scale s is stored as e4m3(f32(x · f32(1/s))) and read as that · s. */
const fp8Written = (x: number, s: number) => fp8Value(fp8Bits(Math.fround(x * Math.fround(1 / s))));

/** The cache's values as the kernels read them: a pool uploaded raw (as fp8 bits, scale applied on read)
 *  or new tokens written by kvWrite (divided by the scale first). */
function cacheValues(values: ArrayLike<number>, dtype: CacheType, scale: number, written: boolean): Float64Array {
  if (dtype !== 'fp8') return storedAs(values, dtype);
  return Float64Array.from(values, (x) => (written ? fp8Written(x, scale) : fp8Value(fp8Bits(x))) * scale);
}
const cacheScales = (dtype: CacheType) => (dtype === 'fp8' ? Float64Array.of(FP8_SCALES.k, FP8_SCALES.v) : undefined);

function kvWriteCase(dtype: CacheType, numKvHeads: number, headDim: number, numTokens: number): OpCase {
  const cache: CacheShape = { numBlocks: 7, blockSize: BLOCK_SIZE, numKvHeads, headDim };
  const name = caseName('kvWrite', { cache: dtype, Hkv: numKvHeads, D: headDim, T: numTokens, blocks: cache.numBlocks });
  const inputs = once(() => {
    const rng = new Rng(name);
    const row = numKvHeads * headDim;
    // Distinct scattered slots, first and last slot of the pool included.
    const slots = rng.permutation(cache.numBlocks * BLOCK_SIZE).subarray(0, numTokens);
    slots[0] = cache.numBlocks * BLOCK_SIZE - 1;
    if (numTokens > 1) slots[1] = 0;
    const fresh = { k: rng.normals(numTokens * row), v: rng.normals(numTokens * row) };
    if (dtype === 'fp8') for (const x of [fresh.k, fresh.v]) adversarialFp8(x, rng);
    return { pools: randomPools(rng, cache), ...fresh, slots };
  });
  const shape = [cache.numBlocks, BLOCK_SIZE, numKvHeads, headDim];
  return {
    name,
    async run(device: Device) {
      const { pools, k, v, slots } = inputs();
      const kc = device.tensor(pools.k, shape, dtype);
      const vc = device.tensor(pools.v, shape, dtype);
      const tokenShape = [numTokens, numKvHeads, headDim];
      ops.kvWrite({ k: kc, v: vc, scales: cacheScales(dtype) }, device.tensor(k, tokenShape), device.tensor(v, tokenShape), slots);
      return { k: await kc.toFloat32(), v: await vc.toFloat32() };  // fp8: the stored elements, unscaled
    },
    expected: once(() => {
      const { pools, k, v, slots } = inputs();
      if (dtype === 'fp8') {
        const raw = (x: Float32Array) => Float64Array.from(x, (e) => fp8Value(fp8Bits(e)));
        const written = (x: Float32Array, s: number) => Float64Array.from(x, (e) => fp8Written(e, s));
        return kvWriteRef(cache, raw(pools.k), raw(pools.v), written(k, FP8_SCALES.k), written(v, FP8_SCALES.v), slots);
      }
      return kvWriteRef(cache, storedAs(pools.k, dtype), storedAs(pools.v, dtype), storedAs(k, dtype), storedAs(v, dtype), slots);
    }),
    tolerance: () => TOLERANCE.exact,
  };
}

/** One sequence of an attention batch: tokens already cached and new query tokens. */
interface SeqSpec {
  cached: number;
  fresh: number;
}

function attentionCase(
  label: string,
  dtype: CacheType,
  numQHeads: number,
  numKvHeads: number,
  headDim: number,
  seqs: SeqSpec[],
  blockSize = BLOCK_SIZE,
): OpCase {
  const name = caseName('attention', {
    batch: label, cache: dtype, Hq: numQHeads, Hkv: numKvHeads, D: headDim,
    seqs: seqs.map((s) => `${s.cached}+${s.fresh}`).join('|'),
    ...(blockSize !== BLOCK_SIZE ? { block: blockSize } : {}),
  });
  const kvLen = Int32Array.from(seqs, (s) => s.cached + s.fresh);
  const blocksPerSeq = Array.from(kvLen, (n) => Math.ceil(n / blockSize));
  // One spare table column (left as −1: a kernel must never read past a sequence's blocks) and a
  // few blocks that belong to no sequence.
  const maxBlocksPerSeq = Math.max(...blocksPerSeq) + 1;
  const cache: CacheShape = {
    numBlocks: blocksPerSeq.reduce((a, b) => a + b, 0) + 3, blockSize, numKvHeads, headDim,
  };
  const qStart = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => (qStart[i + 1] = qStart[i] + s.fresh));
  const numTokens = qStart[seqs.length];
  const inputs = once(() => {
    const rng = new Rng(name);
    // Shuffled, non-contiguous block ids.
    const ids = rng.permutation(cache.numBlocks);
    const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq).fill(-1);
    let next = 0;
    seqs.forEach((_, s) => {
      for (let j = 0; j < blocksPerSeq[s]; j++) blockTables[s * maxBlocksPerSeq + j] = ids[next++];
    });
    // Slots of the new tokens (written by kvWrite before attention, as in a forward pass).
    const slots = new Int32Array(numTokens);
    seqs.forEach((s, i) => {
      for (let t = 0; t < s.fresh; t++) {
        const pos = s.cached + t;
        slots[qStart[i] + t] = blockTables[i * maxBlocksPerSeq + Math.floor(pos / blockSize)] * blockSize + (pos % blockSize);
      }
    });
    const tokenSize = numTokens * numKvHeads * headDim;
    const fresh = { k: rng.normals(tokenSize), v: rng.normals(tokenSize) };
    // V only: saturated keys would turn the softmax into an argmax that f32 score rounding can flip.
    if (dtype === 'fp8') adversarialFp8(fresh.v, rng);
    return {
      pools: randomPools(rng, cache),
      ...fresh,
      q: rng.normals(numTokens * numQHeads * headDim),
      blockTables,
      slots,
    };
  });
  const scale = 1 / Math.sqrt(headDim);
  const poolShape = [cache.numBlocks, blockSize, numKvHeads, headDim];
  return {
    name,
    heavyForSim: numTokens * seqs.reduce((a, s) => Math.max(a, s.cached + s.fresh), 0) * numQHeads * headDim > 40e6,
    async run(device: Device) {
      const { pools, k, v, q, blockTables, slots } = inputs();
      const kvCache = { k: device.tensor(pools.k, poolShape, dtype), v: device.tensor(pools.v, poolShape, dtype), scales: cacheScales(dtype) };
      const tokenShape = [numTokens, numKvHeads, headDim];
      ops.kvWrite(kvCache, device.tensor(k, tokenShape), device.tensor(v, tokenShape), slots);
      const out = poisoned(device, [numTokens, numQHeads, headDim]);
      ops.attention(kvCache, device.tensor(q, [numTokens, numQHeads, headDim]), out.tensor,
        { qStart, kvLen, blockTables, maxBlocksPerSeq }, { scale });
      await out.checkGuards('out');
      return { out: await out.tensor.read() };
    },
    expected: once(() => {
      const { pools, k, v, q, blockTables, slots } = inputs();
      const written = kvWriteRef(cache, cacheValues(pools.k, dtype, FP8_SCALES.k, false), cacheValues(pools.v, dtype, FP8_SCALES.v, false),
        cacheValues(k, dtype, FP8_SCALES.k, true), cacheValues(v, dtype, FP8_SCALES.v, true), slots);
      return {
        out: attentionRef({
          cache, kPool: written.k, vPool: written.v, q, numQHeads, qStart, kvLen, blockTables, maxBlocksPerSeq, scale,
        }),
      };
    }),
    // On CUDA devices the prefill of a bf16 cache runs on tensor cores with Q (scaled) and P rounded
    // to bf16 (native/cuda/attention.cu, prefill_mma_kernel), unit roundoff u = 2^−9: each score moves
    // by at most u·scale·|q|·|k| and each probability by u relative, so the output, a convex
    // combination of V rows, moves by a few u of those rows — the bound for rounded activations.
    // Seen (error / max|out|): 1.2e-3 .. 2.2e-3 up to 40 keys, where max|out| is about one V row;
    // 4.6e-3 for the chunk after 150 cached keys, whose outputs all average many rows. Decodes and
    // the f32, f16 and fp8 caches stay in f32 (f16 and fp8 values are widened exactly, as the reference
    // stores them; fp8's scales cost one f32 rounding per element or per output).
    // A CPU device with precision 'fast' does the same for prefill items of a bf16 cache
    // (native/cpu/attention_bf16.cc: q·scale and p rounded to bf16, vdpbf16ps).
    tolerance: (device) =>
      (isCuda(device) || device.precision === 'fast') && dtype === 'bf16' && seqs.some((s) => s.fresh > 1)
        ? TOLERANCE.roundedActivations.bf16
        : TOLERANCE.f32,
  };
}

export function pagedCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const dtype of ['f32', 'bf16', 'f16', 'fp8'] as CacheType[]) {
    cases.push(kvWriteCase(dtype, 2, 64, 19));
    cases.push(kvWriteCase(dtype, 3, 128, 1));
  }
  // (Hq, Hkv): GQA ratio 1, 4, and 2 with odd head counts.
  const heads = [[4, 4], [8, 2], [6, 3]];
  const batches: [string, SeqSpec[]][] = [
    ['prefill', [{ cached: 0, fresh: 37 }]],
    ['chunk-after-cache', [{ cached: 21, fresh: 19 }]],
    ['decode', [{ cached: 0, fresh: 1 }, { cached: 15, fresh: 1 }, { cached: 16, fresh: 1 }, { cached: 47, fresh: 1 }, { cached: 130, fresh: 1 }]],
    ['mixed', [{ cached: 28, fresh: 1 }, { cached: 16, fresh: 13 }, { cached: 0, fresh: 5 }, { cached: 33, fresh: 1 }]],
  ];
  for (const dtype of ['f32', 'bf16'] as CacheType[])
    for (const D of [64, 128])
      heads.forEach(([Hq, Hkv], ih) => {
        // Every batch shape on every (D, dtype); head layouts rotate so each meets every batch.
        for (const [ib, [label, seqs]] of batches.entries())
          if ((ib + ih) % 3 !== 2 || label === 'mixed') cases.push(attentionCase(label, dtype, Hq, Hkv, D, seqs));
      });
  // The f16 cache (widened to f32 on load; SIMT prefill on CUDA): every batch shape at GQA 4.
  for (const D of [64, 128]) for (const [label, seqs] of batches) cases.push(attentionCase(label, 'f16', 8, 2, D, seqs));
  // The fp8 cache (per-tensor scales folded in on CUDA, applied on load on the CPU): every batch shape.
  for (const D of [64, 128]) for (const [label, seqs] of batches) cases.push(attentionCase(label, 'fp8', 6, 3, D, seqs));
  cases.push(attentionCase('long-decode', 'fp8', 8, 2, 128, [{ cached: 500, fresh: 1 }, { cached: 130, fresh: 1 }]));
  // A long decode (several hundred keys: split-K / multi-block paths) and a long prefill chunk.
  cases.push(attentionCase('long-decode', 'bf16', 8, 2, 128, [{ cached: 700, fresh: 1 }, { cached: 301, fresh: 1 }]));
  cases.push(attentionCase('long-chunk', 'f32', 6, 3, 64, [{ cached: 150, fresh: 70 }]));
  cases.push(attentionCase('long-decode', 'f16', 6, 3, 64, [{ cached: 400, fresh: 1 }]));
  // Decode at every register budget of the 16-byte-load kernel (query heads per KV head padded to
  // 1, 4, 8, 16; G = 3, 5, 11 leave padded heads) and both row widths per lane group (f32 D = 128 is
  // one row per warp load, bf16 D = 64 four), at context lengths that end mid-step and mid-block.
  cases.push(attentionCase('decode-groups', 'bf16', 16, 1, 64, [{ cached: 212, fresh: 1 }, { cached: 6, fresh: 1 }]));
  cases.push(attentionCase('decode-groups', 'f16', 22, 2, 128, [{ cached: 97, fresh: 1 }, { cached: 333, fresh: 1 }]));
  cases.push(attentionCase('decode-groups', 'f32', 10, 2, 128, [{ cached: 145, fresh: 1 }, { cached: 2, fresh: 1 }], 5));
  cases.push(attentionCase('decode-groups', 'bf16', 9, 3, 64, [{ cached: 259, fresh: 1 }], 13));
  // The tensor-core prefill (bf16 cache): two query tiles (64 + 6) over 4 key tiles after a cached
  // prefix; several prefills and a decode at GQA 8 with 7-token blocks (key tiles split blocks);
  // 48 queries (16-row multiple) over exactly 2 key tiles of 80-token blocks (a block spans tiles).
  cases.push(attentionCase('long-chunk', 'bf16', 8, 2, 128, [{ cached: 150, fresh: 70 }]));
  cases.push(attentionCase('prefills', 'bf16', 8, 1, 64, [{ cached: 0, fresh: 70 }, { cached: 90, fresh: 33 },
    { cached: 40, fresh: 1 }, { cached: 5, fresh: 17 }], 7));
  cases.push(attentionCase('big-blocks', 'bf16', 4, 2, 128, [{ cached: 80, fresh: 48 }], 80));
  return cases;
}
