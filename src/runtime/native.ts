// Loads the compiled addon (build/Release/paralon.node) and types its surface. Only src/runtime/
// touches this module; everything else goes through Device, Tensor and the ops.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DType, QuantDType } from './dtype.js';

/** The addon takes every runtime dtype by name (native/ops.h DType). */
export type NativeDType = DType;
/** The ops of the contract (native/ops.h Op), as Device.supports names them. */
export type OpName = 'embedding' | 'matmul' | 'rmsnorm' | 'qkNormRope' | 'swiglu' | 'kvWrite' | 'attention' | 'sample'
  | 'moeRoute' | 'moeMatmul' | 'moeCombine' | 'matmulSwiglu';

export interface NativeTensor {
  read(): Promise<ArrayBuffer>;
  write(data: ArrayBufferView | ArrayBuffer): void;
  view(shape: number[], dtype?: NativeDType, byteOffset?: number): NativeTensor;
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeSampleResult {
  tokens: Int32Array;
  logprobs: Float32Array;
  topTokens: Int32Array;
  topLogprobs: Float32Array;
  targetLogprobs: Float32Array;
  targetRanks: Int32Array;
}

/**
 * CPU matmul precision: 'exact' keeps activations in f32 (bf16/f16 weights widened, quantized blocks
 * decoded, FMA); 'fast' rounds activations to bf16 for bf16 weights and uses AVX512-BF16 dot products
 * (vdpbf16ps) where the CPU has them, and for quantized weights (up to 16 rows) quantizes activations to
 * int8 blocks as llama.cpp does and uses integer dot products (AVX512-VNNI or AVX2).
 */
export type CpuPrecision = 'exact' | 'fast';

export interface NativeDevice {
  readonly name: string;
  readonly description: string;
  readonly hostMemory: boolean;
  /** Matmul precision in effect: 'fast' only on a CPU device asked for it whose CPU has AVX512-BF16, AVX512-VNNI or AVX2. */
  readonly precision: CpuPrecision;
  alloc(dtype: NativeDType, shape: number[]): NativeTensor;
  synchronize(): Promise<void>;
  dispose(): void;
  selfTest(): { name: string; passed: boolean; detail: string }[];
  copy(dst: NativeTensor, src: NativeTensor): void;
  embedding(ids: Int32Array, table: NativeTensor, out: NativeTensor): void;
  matmul(x: NativeTensor, w: NativeTensor | NativeTensor[], out: NativeTensor | NativeTensor[], residual: NativeTensor | null,
    epilogue?: 'swiglu'): void;
  rmsnorm(x: NativeTensor, residual: NativeTensor | null, sumOut: NativeTensor | null, weight: NativeTensor,
    out: NativeTensor, eps: number): void;
  qkNormRope(q: NativeTensor, k: NativeTensor, qWeight: NativeTensor | null, kWeight: NativeTensor | null,
    positions: Int32Array, eps: number, invFreq: Float64Array, attentionFactor: number): void;
  swiglu(gate: NativeTensor, up: NativeTensor, out: NativeTensor): void;
  kvWrite(kCache: NativeTensor, vCache: NativeTensor, k: NativeTensor, v: NativeTensor, slots: Int32Array, kvScales?: Float64Array): void;
  attention(kCache: NativeTensor, vCache: NativeTensor, q: NativeTensor, out: NativeTensor, qStart: Int32Array,
    kvLen: Int32Array, blockTables: Int32Array, maxBlocksPerSeq: number, scale: number, kvScales?: Float64Array): void;
  /** native/addon/sample_binding.cc documents the arguments. */
  sample(logits: NativeTensor, params: Float64Array, penaltyStart: Int32Array, penaltyTokens: Int32Array,
    penaltyCounts: Int32Array, biasStart: Int32Array, biasTokens: Int32Array, biasValues: Float64Array,
    maskRow: Int32Array, masks: Int32Array, numTop: number, targets: Int32Array): Promise<NativeSampleResult>;
  moeRoute(logits: NativeTensor, ids: NativeTensor, weights: NativeTensor, renormalize: boolean): void;
  moeMatmul(x: NativeTensor, w: NativeTensor, ids: NativeTensor, y: NativeTensor): void;
  moeCombine(y: NativeTensor, weights: NativeTensor, out: NativeTensor, residual: NativeTensor | null): void;
  supportsGraphs(): boolean;
  supports(op: string, dtype?: NativeDType): boolean;
  beginCapture(inputs: Int32Array[]): void;
  stageStep(inputs: Int32Array[]): void;
  metadataUploads(): number;
  endCapture(): NativeGraph;
  abortCapture(): void;
}

export interface NativeGraph {
  readonly disposed: boolean;
  replay(inputs: Int32Array[]): void;
  dispose(): void;
}

export interface NativeMappedFile {
  readonly path: string;
  readonly size: number;
  bytes(offset: number, length: number): Uint8Array;
  tensor(device: NativeDevice, byteOffset: number, dtype: NativeDType, shape: number[]): NativeTensor;
  close(): void;
}

export interface NativeAddon {
  Device: new (name: string, threads: number, precision: CpuPrecision) => NativeDevice;
  MappedFile: new (path: string) => NativeMappedFile;
  cudaDeviceCount(): { count: number; reason: string };
  /** Host memory read bandwidth in GB/s (best of `repeats` passes over `bytes`). */
  measureReadBandwidth(bytes: number, threads: number, repeats: number): number;
  /**
   * Forces kernel variants of the CUDA backends and the simulator, process-wide (native/cuda/variants.h):
   * for bench/dev/variants.ts only. A field left out means automatic; a variant that cannot serve a
   * call makes that op throw. matmulPath: 0 GEMV, 1 tensor cores (mma.sync), 2 SIMT f32, 3 wgmma + TMA (Hopper; always on cuda-sim).
   */
  setKernelVariants(v: { matmulPath?: number; matmulTileM?: number; matmulSplits?: number; gemvKSlices?: number; decodeSplits?: number; decodeFusedMerge?: number }): void;
  /**
   * ggml's reference block quantizers (native/addon/quantize_binding.cc): `values` (whole blocks) →
   * `out` (exactly their bytes; allocated when left out), on all cores. Through runtime/native-quantize.ts.
   */
  quantizeRows(dtype: QuantDType, values: Float32Array, out?: Uint8Array): Uint8Array;
  build: { cuda: boolean };
  /** The fields of a sample params row, in order (native/ops.h PARALON_SAMPLING_FIELDS). */
  sampleParamFields: string[];
}

/** The package root: src/runtime/ and dist/runtime/ both sit two levels below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon {
  const candidates = [
    process.env.PARALON_ADDON,
    path.join(packageRoot, 'build', 'Release', 'paralon.node'),
  ].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `Paralon's native addon was not found (looked for ${candidates.join(', ')}). ` +
        'Build it with `npm install` or `npm run build:native`.',
    );
  }
  return createRequire(import.meta.url)(found) as NativeAddon;
}

export const addon: NativeAddon = load();
