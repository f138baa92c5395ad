// Whole decode steps of a Qwen3-shaped random bf16 model on one device: tokens per second at several
// batch sizes, with the decode step replayed as a CUDA graph and queued op by op, side by side, and
// the batch-1 figure against the memory roofline (every weight byte read once per step, at the copy
// bandwidth measured in the same run), and the measured step time next to the ideal one of the
// bytes-per-stage model (decode-model.ts). Each step is what the engine does: forward, then greedy
// sampling that brings the token ids back to the host. Also the host-to-device metadata copies per
// step (Device.metadataUploads: the forward's packed upload, or a graph replay's, plus sampling's
// parameters). Used by gpu:check.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Device, ops } from '../src/runtime/index.js';
import { CausalLM, type SequenceChunk } from '../src/model/step.js';
import { randomCheckpoint } from '../src/model/random-checkpoint.js';
import { shapeSpec } from './checkpoints.js';
import { decodeStepBytes, weightBytesPerStep } from './decode-model.js';
import { measureCeiling } from './kernels.js';
import type { Row } from './results.js';
import type { ModelShape } from './shapes.js';

export interface DecodeStepOptions {
  batches: number[];
  promptTokens: number;
  steps: number;
}

export async function benchDecodeSteps(
  deviceName: string, shape: ModelShape, opt: DecodeStepOptions,
): Promise<{ rows: Row[]; stageRows: Row[]; agreement: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-decode-'));
  const device = Device.open(deviceName as 'cuda');
  const rows: Row[] = [];
  const stageRows: Row[] = [];
  let agreement = 0;
  try {
    console.error(`writing a ${shape.name}-shaped random bf16 checkpoint…`);
    randomCheckpoint({ dir, ...shapeSpec(shape, 'bf16'), eosTokenIds: [shape.vocab - 1] });
    const maxSeqs = Math.max(...opt.batches);
    const load = (graphs: boolean) => CausalLM.load(dir, device, { maxSeqs, maxBatchTokens: Math.max(512, maxSeqs), graphs });
    const models = { graph: await load(true), eager: await load(false) };
    const peak = await measureCeiling(device, 0);
    const blockSize = 16;
    const context = opt.promptTokens + opt.steps + 1;
    const blocksPerSeq = Math.ceil(context / blockSize);
    for (const B of opt.batches) {
      const perMode: Record<string, number> = {};
      const uploads: Record<string, number> = {};
      const lastLogits: Record<string, Float32Array> = {};
      for (const [mode, model] of Object.entries(models)) {
        const kv = model.createKvCache({ blockSize, numBlocks: B * blocksPerSeq, dtype: 'bf16' });
        const tables = Array.from({ length: B }, (_, s) => Array.from({ length: blocksPerSeq }, (_, j) => s * blocksPerSeq + j));
        // Prompts, a chunk per sequence (contents do not matter for speed).
        for (let s = 0; s < B; s++)
          model.forward([{ tokens: Array.from({ length: opt.promptTokens }, (_, i) => (i * 7919 + s) % shape.vocab), numCached: 0, blockTable: tables[s] }], kv);
        let next = Array.from({ length: B }, (_, s) => s + 1);
        const step = async (t: number) => {
          const batch: SequenceChunk[] = next.map((tok, s) => ({ tokens: [tok], numCached: opt.promptTokens + t, blockTable: tables[s] }));
          const logits = model.forward(batch, kv);
          const r = await ops.sample(logits, batch.map(() => ({ temperature: 0 })));
          next = Array.from(r.tokens);
          return logits;
        };
        await step(0); // warm-up (records the graph)
        const copies0 = device.metadataUploads;
        const t0 = performance.now();
        for (let t = 1; t < opt.steps; t++) await step(t);
        perMode[mode] = (B * (opt.steps - 1)) / ((performance.now() - t0) / 1000);
        uploads[mode] = (device.metadataUploads - copies0) / (opt.steps - 1);
        lastLogits[mode] = await (await step(opt.steps)).read();
        kv.dispose();
        console.error(`  batch ${B}, ${mode}: ${perMode[mode].toFixed(1)} tok/s`);
      }
      // Both modes decoded the same greedy streams: their last logits must agree.
      let maxRef = 0;
      let maxErr = 0;
      lastLogits.graph.forEach((g, i) => {
        maxRef = Math.max(maxRef, Math.abs(lastLogits.eager[i]));
        maxErr = Math.max(maxErr, Math.abs(g - lastLogits.eager[i]));
      });
      agreement = Math.max(agreement, maxErr / maxRef);
      const roofline = peak.gbps * 1e9 / weightBytesPerStep(shape);
      // The timed steps attend over promptTokens + 2 .. promptTokens + steps keys: the middle one.
      const model = decodeStepBytes(shape, B, opt.promptTokens + Math.ceil(opt.steps / 2) + 1);
      const idealMs = (model.totalBytes / (peak.gbps * 1e9)) * 1000;
      const measuredMs = (1000 * B) / perMode.graph;
      for (const st of model.stages) {
        stageRows.push({ model: `${shape.name} bf16`, batch: B, stage: st.stage, 'MB per step': st.bytes / 1e6, 'ideal µs': (st.bytes / (peak.gbps * 1e9)) * 1e6 });
      }
      rows.push({
        model: `${shape.name} bf16`, batch: B, context: `${opt.promptTokens}+${opt.steps}`,
        'graph tok/s': perMode.graph, 'eager tok/s': perMode.eager, 'graph / eager': perMode.graph / perMode.eager,
        'steps/s (graph)': perMode.graph / B, '% roofline (steps/s)': (100 * perMode.graph) / B / roofline,
        'graph vs eager logits': maxErr / maxRef,
        'H2D copies/step graph': uploads.graph, 'H2D copies/step eager': uploads.eager,
        'MB per step (bytes model)': model.totalBytes / 1e6, 'ideal step ms': idealMs, 'measured step ms (graph)': measuredMs,
        '% of ideal': (100 * idealMs) / measuredMs,
      });
    }
    models.graph.dispose();
    models.eager.dispose();
  } finally {
    device.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, stageRows, agreement };
}
