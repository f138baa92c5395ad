// The paged KV cache's memory: per layer one K and one V pool of [numBlocks, blockSize, numKvHeads,
// headDim] (f32, bf16, f16 or fp8 e4m3 with per-tensor scales per layer). Slot s of a layer is block s / blockSize, offset s % blockSize. Which blocks
// a sequence owns (block tables, prefix sharing) is decided above this class; it only holds memory.
import { dtypeBytes } from '../runtime/dtype.js';
import type { Device, KvCache } from '../runtime/index.js';
import type { KvScales } from '../model/kv-scales.js';

/** The element types a KV cache can hold (every backend's kvWrite and attention run them). */
export const KV_CACHE_DTYPES = ['f32', 'bf16', 'f16', 'fp8'] as const;
export type KvCacheDType = (typeof KV_CACHE_DTYPES)[number];

/** What the cache stores per token and layer: one K and one V vector per KV head. */
export interface KvCacheShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

export interface KvCachePoolOptions {
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Element type (default bf16: half the memory and bandwidth of f32, 8 mantissa bits). */
  dtype?: KvCacheDType;
  /**
   * fp8 only: the per-tensor scales of K and V (a stored e4m3 element e means e · scale), one pair for
   * every layer or one pair per layer (a checkpoint's k_scale/v_scale: src/model/kv-scales.ts).
   * Default 1 and 1, as vLLM without scales in the checkpoint: e4m3 then holds magnitudes 2^-9 … 448
   * with 3 mantissa bits (relative error ≤ 2^-4 from 2^-6 up).
   */
  fp8Scales?: KvScales | readonly KvScales[];
  /** Size the pool by blocks, by tokens (rounded up to whole blocks) or by bytes (rounded down); exactly one. */
  numBlocks?: number;
  maxTokens?: number;
  maxBytes?: number;
}

export class KvCachePool {
  readonly device: Device;
  readonly shape: KvCacheShape;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly dtype: KvCacheDType;
  /** One K/V pair per layer, ready for ops.kvWrite and ops.attention. */
  readonly layers: readonly KvCache[];

  constructor(device: Device, shape: KvCacheShape, options: KvCachePoolOptions = {}) {
    const blockSize = options.blockSize ?? 16;
    const dtype = options.dtype ?? 'bf16';
    for (const [key, v] of Object.entries({ ...shape, blockSize }))
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`KvCachePool: ${key} must be a positive integer (got ${v})`);
    if (!KV_CACHE_DTYPES.includes(dtype)) throw new Error(`KvCachePool: dtype must be ${KV_CACHE_DTYPES.join(', ')} (got ${String(dtype)})`);
    const given = options.fp8Scales;
    if (given && dtype !== 'fp8') throw new Error(`KvCachePool: fp8Scales need dtype fp8 (got ${dtype})`);
    const scales = given && 'k' in given ? Array<KvScales>(shape.numLayers).fill(given) : given;
    if (scales && scales.length !== shape.numLayers)
      throw new Error(`KvCachePool: fp8Scales has ${scales.length} layers, the model ${shape.numLayers}`);
    for (const s of scales?.flatMap((l) => [l.k, l.v]) ?? [])
      if (!(Number.isFinite(s) && s > 0)) throw new Error(`KvCachePool: fp8Scales must be positive finite numbers (got ${s})`);
    const sizings = [options.numBlocks, options.maxTokens, options.maxBytes].filter((v) => v !== undefined);
    if (sizings.length !== 1) throw new Error('KvCachePool: give exactly one of numBlocks, maxTokens or maxBytes');

    const bytesPerBlock = KvCachePool.bytesPerBlock(shape, blockSize, dtype);
    const numBlocks =
      options.numBlocks ??
      (options.maxTokens !== undefined ? Math.ceil(options.maxTokens / blockSize) : Math.floor(options.maxBytes! / bytesPerBlock));
    if (!Number.isSafeInteger(numBlocks) || numBlocks < 1)
      throw new Error(`KvCachePool: the pool would hold ${numBlocks} blocks (${bytesPerBlock} bytes each); it needs at least one`);

    this.device = device;
    this.shape = { ...shape };
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.dtype = dtype;
    const dims = [numBlocks, blockSize, shape.numKvHeads, shape.headDim];
    const layers: KvCache[] = [];
    try {
      for (let i = 0; i < shape.numLayers; i++) {
        const kvScales = scales ? Float64Array.of(scales[i].k, scales[i].v) : undefined;
        layers.push({ k: device.empty(dims, dtype), v: device.empty(dims, dtype), scales: kvScales });
      }
    } catch (e) {
      for (const l of layers) {
        l.k.dispose();
        l.v.dispose();
      }
      throw new Error(`KvCachePool: cannot allocate ${numBlocks} blocks (${(numBlocks * bytesPerBlock) / 2 ** 20} MiB): ${(e as Error).message}`);
    }
    this.layers = layers;
  }

  /** K and V bytes of one block across all layers. */
  static bytesPerBlock(shape: KvCacheShape, blockSize: number, dtype: KvCacheDType): number {
    return 2 * shape.numLayers * blockSize * shape.numKvHeads * shape.headDim * dtypeBytes[dtype];
  }

  get maxTokens(): number {
    return this.numBlocks * this.blockSize;
  }

  get bytes(): number {
    return this.numBlocks * KvCachePool.bytesPerBlock(this.shape, this.blockSize, this.dtype);
  }

  dispose(): void {
    for (const l of this.layers) {
      l.k.dispose();
      l.v.dispose();
    }
  }
}
