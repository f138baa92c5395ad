// `npm run bench -- e2e --quant Q8_0,Q4_K_M,Q6_K [--model-shape 0.6b|8b] [--threads N] [--reps N]
// [--batch 1,16] [--cpu-precision exact,fast] ...`: the e2e bench on quantized GGUF files. With several
// CPU precisions, Paralon runs once per precision (one row each, back to back in one process; 'fast':
// int8 activations and integer dot products, native/cpu/quant_int8.cc) against one llama.cpp run. Per file type, the same GGUF (the
// model-shaped random bf16 checkpoint exported by llama-quantize's recipe, every block made by
// llama.cpp's own quantizer: bench/checkpoints.ts cachedQuantGguf) in Paralon and in llama.cpp, each as
// its users run it (Paralon: library API, bf16 KV — its default for quantized weights; llama.cpp: its
// defaults, F16 KV, flash attention auto): prefill of --prompt-tokens, decode at batch 1, and batched
// decode (bench/e2e-batched.ts). Decode is set against the memory roofline measured in the same run:
// host read bandwidth (best of 5 passes over 1 GiB, --threads threads) ÷ the bytes a decode step must
// read (every matrix of the file, token_embd only when it is also the LM head). Next to the file size:
// the process RSS after each engine's runs (the file is mapped; pages it touched count once).
import { existsSync, mkdirSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { addon } from '../src/runtime/native.js';
import { loadModel } from '../src/index.js';
import type { CpuPrecision } from '../src/runtime/index.js';
import { readGgufHeader, type GgufFileType } from '../src/model/gguf/index.js';
import { cacheDir, cachedQuantGguf } from './checkpoints.js';
import type { ModelShape } from './shapes.js';
import { generateTogether, runLlamaCppBatch, runParalonBatch, type BatchSample } from './e2e-batched.js';
import { batchPrompts, median, randomPrompt, runLlamaCpp, runParalon, type E2eSettings, type Sample } from './e2e.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { markdownTable, runInfo, saveResults, type Row } from './results.js';

/** Bytes one decode step reads from the file: all matrices but an untied token_embd (one row of it). */
function decodeBytes(file: string): number {
  const h = readGgufHeader(file);
  const tied = !h.tensors.some((t) => t.name === 'output.weight');
  return h.tensors.filter((t) => tied || t.name !== 'token_embd.weight').reduce((a, t) => a + t.byteLength, 0);
}

const rssGiB = () => process.memoryUsage().rss / 2 ** 30;

/** Approximate bits per weight of each file type (llama.cpp's figures; Q4_K_M/Q5_K_M mix in Q6_K). */
const BITS_PER_WEIGHT: Partial<Record<GgufFileType, number>> = { Q8_0: 8.5, Q6_K: 6.56, Q5_K_M: 5.7, Q4_K_M: 4.9 };

/**
 * Refuses to start when the cache's file system cannot hold what the run still has to write (the bf16
 * checkpoint `name` and the GGUFs of `types` that are not cached yet): the 8B shape needs about 16 GB
 * for the checkpoint plus 5–9 GB per type, and a disk filled halfway through helps nobody.
 */
export function checkDiskForQuant(name: string, shape: ModelShape, types: GgufFileType[]): void {
  const h = shape.hidden, q = shape.numHeads * shape.headDim, kv = shape.numKvHeads * shape.headDim;
  const params = 2 * shape.vocab * h + shape.numLayers * (2 * h * q + 2 * h * kv + 3 * h * shape.intermediate);
  const dir = path.join(cacheDir, name);
  let need = existsSync(path.join(dir, 'complete')) ? 0 : 2 * params;
  for (const t of types) if (!existsSync(path.join(dir, `model-${t}.gguf`))) need += (params * (BITS_PER_WEIGHT[t] ?? 8.5)) / 8;
  mkdirSync(cacheDir, { recursive: true });
  const fs = statfsSync(cacheDir);
  const free = fs.bavail * fs.bsize;
  const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
  if (need > 0.95 * free) throw new Error(`${shape.name}-shaped ${types.join(', ')}: about ${gb(need)} still to write into ${cacheDir}, only ${gb(free)} free`);
  if (need > 0) console.error(`${shape.name}: about ${gb(need)} to write into ${cacheDir} (${gb(free)} free)`);
}

export async function benchE2eQuant(s: E2eSettings, types: GgufFileType[], dir: string, precisions: CpuPrecision[] = ['exact']): Promise<void> {
  const { shape, threads, promptTokens, decodeTokens, reps, batches, batchPromptTokens } = s;
  const maxBatch = Math.max(1, ...batches);
  const contextSize = 2048;
  const batchContext = Math.ceil((batchPromptTokens + decodeTokens + 1) / 256) * 256;
  const kvBytesPerToken = 2 * shape.numLayers * shape.numKvHeads * shape.headDim * 2;
  const batchKvBytes = Math.max(2 ** 30, kvBytesPerToken * maxBatch * (Math.ceil((batchPromptTokens + decodeTokens + 1) / 16) + 1) * 16);
  const files = Object.fromEntries(types.map((t) => [t, cachedQuantGguf(dir, t)]));
  const bandwidth = addon.measureReadBandwidth(1 << 30, threads, 5) * 1e9;
  console.error(`host read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (${threads} threads)`);

  const rows: Row[] = [];
  const batchRows: Row[] = [];
  let deviceDescription = '';
  const samples: Record<string, unknown> = {};
  for (const type of types) {
    const file = files[type];
    const bytes = decodeBytes(file);
    const roofline = bandwidth / bytes;
    const report = (engine: string, x: Sample) => console.error(`${type} ${engine}: prefill ${x.prefillTokPerS.toFixed(1)} tok/s, decode ${x.decodeTokPerS.toFixed(2)} tok/s`);
    const reportBatch = (engine: string, b: number, x: BatchSample) => console.error(`${type} ${engine} B=${b}: decode ${x.decodeTokPerS.toFixed(2)} tok/s aggregate`);

    const oursBy: Record<string, { samples: Sample[]; batched: Record<number, BatchSample[]>; rss: number; device: string }> = {};
    for (const precision of precisions) {
      const ours: Sample[] = [];
      const oursBatched: Record<number, BatchSample[]> = {};
      const engine = `Paralon ${precision}`;
      const model = await loadModel(file, { device: 'cpu', threads, cpuPrecision: precision, prefixCaching: false, maxNumSeqs: maxBatch, maxNumBatchedTokens: Math.max(512, maxBatch), maxModelLen: contextSize, kvCacheMemory: batchKvBytes });
      try {
        if (model.device.precision !== precision) throw new Error(`--cpu-precision ${precision}: this CPU runs ${model.device.precision} (${model.device.description})`);
        await runParalon(model, randomPrompt(promptTokens, 1000), 2);
        for (let r = 0; r < reps; r++) {
          ours.push(await runParalon(model, randomPrompt(promptTokens, r), decodeTokens));
          report(engine, ours[r]);
        }
        if (batches.length) await generateTogether(model, batchPrompts(maxBatch, 8, 1000), 2);
        for (const b of batches) {
          oursBatched[b] = [];
          for (let r = 0; r < reps; r++) {
            oursBatched[b].push(await runParalonBatch(model, batchPrompts(b, batchPromptTokens, r), decodeTokens));
            reportBatch(engine, b, oursBatched[b][r]);
          }
        }
        oursBy[precision] = { samples: ours, batched: oursBatched, rss: rssGiB(), device: model.device.description };
        deviceDescription = model.device.description;
      } finally {
        model.dispose();
      }
    }

    const theirs: Sample[] = [];
    const theirsBatched: Record<number, BatchSample[]> = {};
    let theirsRss = 0;
    const peerOptions = { threads, batchSize: 512, kvCacheType: 'F16', flashAttention: 'auto' } as const;
    const peer = await LlamaCppPeer.open(file, { ...peerOptions, contextSize });
    const description = peer.description;
    try {
      await runLlamaCpp(peer, randomPrompt(promptTokens, 1000), 2);
      for (let r = 0; r < reps; r++) {
        theirs.push(await runLlamaCpp(peer, randomPrompt(promptTokens, r), decodeTokens));
        report('llama.cpp', theirs[r]);
      }
      theirsRss = rssGiB();
    } finally {
      await peer.dispose();
    }
    for (const b of batches) {
      const multi = await LlamaCppPeer.open(file, { ...peerOptions, contextSize: batchContext, sequences: b });
      try {
        await multi.greedyParallel(batchPrompts(b, 8, 1000), 3);
        theirsBatched[b] = [];
        for (let r = 0; r < reps; r++) {
          theirsBatched[b].push(await runLlamaCppBatch(multi, batchPrompts(b, batchPromptTokens, r), decodeTokens));
          reportBatch('llama.cpp', b, theirsBatched[b][r]);
        }
      } finally {
        await multi.dispose();
      }
    }

    const prefill = (xs: Sample[]) => median(xs.map((x) => x.prefillTokPerS));
    const decode = (xs: Sample[]) => median(xs.map((x) => x.decodeTokPerS));
    const fileGiB = statSync(file).size / 2 ** 30;
    for (const precision of precisions) {
      const { samples: ours, batched: oursBatched, rss: oursRss } = oursBy[precision];
      rows.push({
        type,
        precision,
        'file GiB': fileGiB,
        'Paralon prefill tok/s': prefill(ours),
        'llama.cpp prefill tok/s': prefill(theirs),
        'prefill ratio': prefill(ours) / prefill(theirs),
        'Paralon decode tok/s': decode(ours),
        'llama.cpp decode tok/s': decode(theirs),
        'decode ratio': decode(ours) / decode(theirs),
        'roofline tok/s': roofline,
        'Paralon % roofline': (100 * decode(ours)) / roofline,
        'llama.cpp % roofline': (100 * decode(theirs)) / roofline,
        'Paralon RSS GiB': oursRss,
        'RSS after llama.cpp GiB': theirsRss,
      });
      for (const b of batches) {
        const o = median(oursBatched[b].map((x) => x.decodeTokPerS));
        const t = median(theirsBatched[b].map((x) => x.decodeTokPerS));
        batchRows.push({ type, precision, batch: b, 'Paralon tok/s': o, 'llama.cpp tok/s': t, ratio: o / t });
      }
    }
    samples[type] = { file, decodeBytes: bytes, peer: description, paralon: oursBy, llamaCpp: theirs, llamaCppBatched: theirsBatched };
  }

  const notes =
    `${shape.name}-shaped random checkpoint as ${types.join(', ')} GGUFs (llama-quantize's recipe; blocks by llama.cpp's own quantizer, so both engines read identical bytes), ` +
    `${threads} threads each, ${promptTokens}-token prompt, ${decodeTokens} decoded tokens, median of ${reps} repetitions, the engines one after the other in one process. ` +
    `Paralon: cpu, bf16 KV (its default for quantized weights), CPU precision ${precisions.join(' and ')} (${deviceDescription}). llama.cpp: node-llama-cpp 3.21.1 defaults (F16 KV, flash attention auto). ` +
    `Roofline: host read bandwidth measured in this run (${(bandwidth / 1e9).toFixed(1)} GB/s) ÷ the bytes of one decode step (every matrix; token_embd when tied). ` +
    `RSS: the process after the engine's runs (GGUF mapped; llama.cpp's column includes what Paralon left mapped or cached).`;
  const appendix = batches.length
    ? `\n## Batched decode\n\nB greedy generations on B different ${batchPromptTokens}-token prompts, aggregate decode tok/s (bench/e2e-batched.ts).\n\n${markdownTable(batchRows)}`
    : '';
  const out = saveResults(`e2e-quant-${shape.name.toLowerCase()}`, runInfo('e2e', 'cpu'), { shape, threads, precisions, promptTokens, decodeTokens, reps, bandwidth, samples, batchRows }, rows, notes, appendix);
  console.log(notes);
  console.log(markdownTable(rows));
  if (batches.length) console.log(markdownTable(batchRows));
  console.log(out.join('\n'));
}
