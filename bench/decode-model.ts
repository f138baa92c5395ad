// The bytes one decode step must move, stage by stage (calm's accounting): every weight byte once,
// the KV cache each sequence attends over, and the f32 activations each kernel reads and writes
// (the engine's ops are separate kernels, so activations go through memory between them). Divided by
// the device's measured bandwidth it gives the ideal step time that gpu:check puts next to the
// measured one; the per-stage split shows where a slow step loses its time.
import type { ModelShape } from './shapes.js';

export interface StageBytes {
  stage: string;
  /** Bytes per step, all layers together. */
  bytes: number;
}

export interface DecodeStepModel {
  batch: number;
  /** Keys each sequence attends over (its context after this step's token). */
  context: number;
  stages: StageBytes[];
  totalBytes: number;
}

/** bf16 weights and KV cache, f32 activations (what the engine runs). */
export function decodeStepBytes(s: ModelShape, batch: number, context: number): DecodeStepModel {
  const W = 2; // bytes per weight
  const KV = 2; // bytes per cache element
  const A = 4; // bytes per activation
  const B = batch;
  const H = s.hidden;
  const I = s.intermediate;
  const D = s.headDim;
  const q = s.numHeads * D;
  const kv = s.numKvHeads * D;
  const L = s.numLayers;
  const norm = 2 * B * H * A + H * W; // read x, write out, read the weight
  const stages: StageBytes[] = [
    { stage: 'embedding', bytes: B * H * W + B * H * A },
    { stage: 'rmsnorm ×2 per layer', bytes: L * 2 * norm },
    { stage: 'q/k/v projections', bytes: L * ((q + 2 * kv) * H * W + B * H * A + B * (q + 2 * kv) * A) },
    { stage: 'qk-norm + rope', bytes: L * (2 * B * (q + kv) * A + 2 * D * W) },
    { stage: 'kv write', bytes: L * (2 * B * kv * A + 2 * B * kv * KV) },
    { stage: 'attention (KV read)', bytes: L * (B * context * 2 * kv * KV + 2 * B * q * A) },
    { stage: 'o projection + residual', bytes: L * (q * H * W + B * q * A + 2 * B * H * A) },
    // One matmul with the SwiGLU epilogue (CUDA and CPU): the [B, 2I] gate/up product never reaches
    // memory — 4·B·I·4 bytes and two launches per layer less than gate/up + a swiglu op.
    { stage: 'gate/up projections + swiglu', bytes: L * (2 * I * H * W + B * H * A + B * I * A) },
    { stage: 'down projection + residual', bytes: L * (I * H * W + B * I * A + 2 * B * H * A) },
    { stage: 'final rmsnorm', bytes: norm },
    { stage: 'lm head', bytes: s.vocab * H * W + B * H * A + B * s.vocab * A },
    { stage: 'sampling (logits read)', bytes: B * s.vocab * A },
  ];
  return { batch, context, stages, totalBytes: stages.reduce((a, x) => a + x.bytes, 0) };
}

/**
 * Latency terms of the decode step that bytes do not show (H100-class figures; to be replaced by
 * gpu:check's measurements): a kernel boundary (the drain and refill of the GPU between two graph
 * nodes, or an eager launch), one SM's read rate from L2, and an L2 round trip.
 */
export interface LatencyParams {
  boundaryUs: number;
  smL2GBs: number;
  l2LatencyUs: number;
}
export const h100Latency: LatencyParams = { boundaryUs: 2, smL2GBs: 110, l2LatencyUs: 0.6 };

export interface MergeModel {
  splits: number;
  /** Bytes one (sequence, KV head)'s last CTA reads to merge its splits (the fused tail). */
  tailBytes: number;
  /** Fused: the tail of the last CTA per (sequence, KV head), which run on different SMs at once. */
  fusedUs: number;
  /** Unfused: one more kernel boundary plus merge_kernel (its threads read `splits` partials each). */
  unfusedUs: number;
}

/**
 * The flash-decoding merge, fused into the decode launch or not (native/cuda/attention.cu,
 * fused_merge): splits as launch_decode picks them (≈ 2 waves of CTAs, ≤ 64-key tiles), then the
 * time each way. A merging thread makes two passes over the splits (m, then acc and l), 4 loads in
 * flight: 2·⌈splits/4⌉ L2 round trips per output it owns. The fused tail's 128 threads own
 * ⌈G·D/512⌉ 4-column groups each and read G·D·splits·4 bytes (+ m, l) on one SM; merge_kernel gives
 * each column a thread but pays a kernel boundary, its bytes spread over the GPU. So the fused tail
 * wins while G·D ≤ 512 (Qwen3-0.6B's G = 2 and 8B's G = 4 at D = 128), merge_kernel beyond.
 */
export function decodeMergeModel(s: ModelShape, batch: number, context: number, sms: number, p: LatencyParams = h100Latency): MergeModel {
  const G = s.numHeads / s.numKvHeads;
  const baseCtas = batch * s.numKvHeads;
  const tiles = Math.max(1, Math.ceil(context / 64));
  let splits = Math.max(1, Math.min(tiles, Math.ceil((2 * sms) / baseCtas)));
  const splitLen = Math.ceil(tiles / splits) * 64;
  splits = Math.max(1, Math.ceil(context / splitLen));
  const tailBytes = G * s.headDim * splits * 4 + G * splits * 8;
  const trips = 2 * Math.ceil(splits / 4) * p.l2LatencyUs;
  const fusedUs = splits === 1 ? 0 : Math.ceil((G * s.headDim) / 512) * trips + tailBytes / (p.smL2GBs * 1e3);
  const allBytes = baseCtas * tailBytes;
  const unfusedUs = splits === 1 ? 0 : p.boundaryUs + trips + allBytes / (sms * p.smL2GBs * 1e3);
  return { splits, tailBytes, fusedUs, unfusedUs };
}

/** Bytes of bf16 matrices a decode step reads (embedding rows aside): the weights-only roofline. */
export function weightBytesPerStep(s: ModelShape): number {
  const layer = s.hidden * (s.numHeads + 2 * s.numKvHeads) * s.headDim + s.numHeads * s.headDim * s.hidden + 3 * s.hidden * s.intermediate;
  return 2 * (s.numLayers * layer + s.vocab * s.hidden);
}
