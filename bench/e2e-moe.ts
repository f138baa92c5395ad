// `npm run bench -- e2e-moe [--device cpu] [--threads N] [--layers N] [--experts N] [--vocab N]
// [--prompt-tokens N] [--decode-tokens N] [--reps N]`: greedy decode speed of a scaled Qwen3-30B-A3B
// (Qwen3MoeForCausalLM, bf16) on one device, against the memory roofline of its active weights.
//
// Scaling: the real layer shapes (hidden 2048, 32 query and 4 KV heads of 128, experts of width 768)
// and the real active-parameter ratio (8 of 128 experts → k = experts / 16), with fewer experts and
// layers so the checkpoint fits a small machine (defaults: 32 experts, top-2, 4 layers; the real
// model has 128 experts, top-8, 48 layers). The vocabulary defaults to 32,000 rows rather than
// 151,936, so the LM head does not dominate a 4-layer step.
//
// Per repetition: one prompt prefilled, then decode steps each followed by greedy sampling (what the
// engine does); tok/s over the decode steps, median of the repetitions after a warm-up. Roofline:
// bytes of bf16 weights one decode token reads — attention, router, the k chosen experts' gate/up/down,
// the LM head — at the read bandwidth measured in the same run (host memory, or device copy on CUDA).
// llama.cpp on the same weights is not run here: that needs the GGUF export of qwen3moe (not written
// yet) and node-llama-cpp.
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Device, ops } from '../src/runtime/index.js';
import { CausalLM } from '../src/model/step.js';
import { randomCheckpoint } from '../src/model/random-checkpoint.js';
import { measureCeiling } from './kernels.js';
import { checkQuiet, markdownTable, runInfo, saveResults, type Row } from './results.js';

const SHAPE = { hidden: 2048, numHeads: 32, numKvHeads: 4, headDim: 128, moeIntermediate: 768, denseIntermediate: 6144 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function benchE2eMoe(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: String(Math.min(2, os.cpus().length)) },
      layers: { type: 'string', default: '4' },
      experts: { type: 'string', default: '32' },
      vocab: { type: 'string', default: '32000' },
      'prompt-tokens': { type: 'string', default: '64' },
      'decode-tokens': { type: 'string', default: '24' },
      reps: { type: 'string', default: '3' },
    },
  });
  const n = (key: keyof typeof values) => {
    const v = Number(values[key]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${key} must be a positive integer`);
    return v;
  };
  const [threads, layers, experts, vocab, promptTokens, decodeTokens, reps] =
    (['threads', 'layers', 'experts', 'vocab', 'prompt-tokens', 'decode-tokens', 'reps'] as const).map(n);
  if (experts % 16 !== 0) throw new Error('--experts must be a multiple of 16 (top-k = experts / 16, the real 8-of-128 ratio)');
  const topK = experts / 16;
  const s = SHAPE;

  const qkvo = s.hidden * (s.numHeads + 2 * s.numKvHeads) * s.headDim + s.numHeads * s.headDim * s.hidden;
  const activeBytes = 2 * (layers * (qkvo + experts * s.hidden + topK * 3 * s.hidden * s.moeIntermediate) + vocab * s.hidden);
  const totalBytes = 2 * (layers * (qkvo + experts * s.hidden + experts * 3 * s.hidden * s.moeIntermediate) + vocab * s.hidden);

  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-e2e-moe-'));
  const device = Device.open(values.device as 'cpu', { threads });
  try {
    if (device.hostMemory) await checkQuiet();
    console.error(`writing a scaled Qwen3-30B-A3B checkpoint: ${layers} layers, ${experts} experts, top-${topK}, vocab ${vocab} (${(totalBytes / 1e9).toFixed(2)} GB bf16)…`);
    randomCheckpoint({
      dir, hiddenSize: s.hidden, numHeads: s.numHeads, numKvHeads: s.numKvHeads, headDim: s.headDim,
      intermediateSize: s.denseIntermediate, numLayers: layers, vocabSize: vocab, tieWordEmbeddings: false, dtype: 'bf16',
      eosTokenIds: [vocab - 1], moe: { numExperts: experts, numExpertsPerTok: topK, moeIntermediateSize: s.moeIntermediate, normTopkProb: true },
    });
    const model = await CausalLM.load(dir, device, { maxSeqs: 1, maxBatchTokens: Math.max(64, promptTokens) });
    const peak = await measureCeiling(device, threads);
    console.error(`ceiling: ${peak.name}: ${peak.gbps.toFixed(1)} GB/s; ${(activeBytes / 1e6).toFixed(0)} MB of weights per decode token`);
    const blockSize = 16;
    const context = promptTokens + decodeTokens + 2;
    const table = Array.from({ length: Math.ceil(context / blockSize) }, (_, j) => j);
    const run = async (seed: number, steps: number) => {
      const kv = model.createKvCache({ blockSize, numBlocks: table.length, dtype: 'bf16' });
      const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + seed * 104_729) % (vocab - 1));
      const t0 = performance.now();
      let logits = model.forward([{ tokens: prompt, numCached: 0, blockTable: table }], kv);
      let next = (await ops.sample(logits, [{ temperature: 0 }])).tokens[0];
      const t1 = performance.now();
      for (let t = 0; t < steps; t++) {
        logits = model.forward([{ tokens: [next], numCached: promptTokens + t, blockTable: table }], kv);
        next = (await ops.sample(logits, [{ temperature: 0 }])).tokens[0];
      }
      const t2 = performance.now();
      kv.dispose();
      return { prefill: promptTokens / ((t1 - t0) / 1000), decode: steps / ((t2 - t1) / 1000) };
    };
    await run(999, 2); // warm-up: pages the weights in (and records the decode graph on CUDA)
    const samples = [];
    for (let r = 0; r < reps; r++) {
      samples.push(await run(r, decodeTokens));
      console.error(`rep ${r + 1}/${reps}: prefill ${samples[r].prefill.toFixed(1)} tok/s, decode ${samples[r].decode.toFixed(2)} tok/s`);
    }
    model.dispose();
    const decode = median(samples.map((x) => x.decode));
    const roofline = (peak.gbps * 1e9) / activeBytes;
    const rows: Row[] = [{
      model: `Qwen3-30B-A3B scaled: ${layers} layers, ${experts} experts top-${topK}, vocab ${vocab}, bf16`,
      threads,
      'prefill tok/s': median(samples.map((x) => x.prefill)),
      'decode tok/s': decode,
      'active MB / token': activeBytes / 1e6,
      'roofline tok/s': roofline,
      '% of roofline': (100 * decode) / roofline,
    }];
    const command = `npm run bench -- e2e-moe ${argv.join(' ')}`.trim();
    const notes = `Command: \`${command}\`. Ceiling: ${peak.name} = ${peak.gbps.toFixed(1)} GB/s, measured in the same run. ` +
      `Prompt ${promptTokens} tokens, ${decodeTokens} decoded tokens, median of ${reps} repetitions after a warm-up. ` +
      'Active bytes: attention, router, the chosen experts and the LM head in bf16 (embedding rows aside). No llama.cpp column: its qwen3moe GGUF export is not written yet.\n';
    const files = saveResults(`e2e-moe-${device.hostMemory ? 'cpu' : 'cuda'}`, runInfo('e2e-moe', device.description), { peak }, rows, notes);
    process.stdout.write(markdownTable(rows));
    console.error(`saved ${files.join(', ')}`);
  } finally {
    device.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
