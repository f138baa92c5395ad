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
    { stage: 'gate/up projections', bytes: L * (2 * I * H * W + B * H * A + 2 * B * I * A) },
    { stage: 'swiglu', bytes: L * 3 * B * I * A },
    { stage: 'down projection + residual', bytes: L * (I * H * W + B * I * A + 2 * B * H * A) },
    { stage: 'final rmsnorm', bytes: norm },
    { stage: 'lm head', bytes: s.vocab * H * W + B * H * A + B * s.vocab * A },
    { stage: 'sampling (logits read)', bytes: B * s.vocab * A },
  ];
  return { batch, context, stages, totalBytes: stages.reduce((a, x) => a + x.bytes, 0) };
}

/** Bytes of bf16 matrices a decode step reads (embedding rows aside): the weights-only roofline. */
export function weightBytesPerStep(s: ModelShape): number {
  const layer = s.hidden * (s.numHeads + 2 * s.numKvHeads) * s.headDim + s.numHeads * s.headDim * s.hidden + 3 * s.hidden * s.intermediate;
  return 2 * (s.numLayers * layer + s.vocab * s.hidden);
}
