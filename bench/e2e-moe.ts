// `npm run bench -- e2e-moe [--threads N] [--layers N] [--experts N] [--vocab N] [--dtype bf16|q8_0|…]
// [--prompt-tokens N] [--decode-tokens N] [--reps N] [--no-llamacpp]`: greedy decode speed of a scaled
// Qwen3-30B-A3B (qwen3moe GGUF) on the CPU, Paralon and llama.cpp on the same file, against the memory
// roofline of its active weights.
//
// Scaling: the real layer shapes (hidden 2048, 32 query and 4 KV heads of 128, experts of width 768)
// and the real active-parameter ratio (8 of 128 experts → k = experts / 16), with fewer experts and
// layers so the checkpoint fits a small machine (defaults: 32 experts, top-2, 4 layers; the real
// model has 128 experts, top-8, 48 layers). The vocabulary defaults to 32,000 rows rather than
// 151,936, so the LM head does not dominate a 4-layer step (a tiny byte-level tokenizer, padded to
// the vocabulary, goes into the GGUF: the bench feeds token ids, never text).
//
// The random bf16 checkpoint is exported by Paralon's writer to one GGUF of --dtype (every matrix;
// norms and the router F32, as llama.cpp's converter keeps them), cached under bench/.cache. Both
// engines read that file: Paralon through loadModel's GGUF path (experts in place, quantized blocks
// read by moeMatmul), llama.cpp (node-llama-cpp 3.21.1, F16 KV, flash attention auto, its defaults)
// through its qwen3moe loader.
//
// Per repetition (Paralon's, then llama.cpp's, one engine open at a time): one prompt prefilled, then
// greedy decode; tok/s over the decode steps from the first token to the last, median of the
// repetitions after a warm-up. Roofline: bytes of weights one decode token reads — attention, router,
// the k chosen experts' gate/up/down, the LM head, in the file's types — at the read bandwidth
// measured in the same run.
import os from 'node:os';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../src/index.js';
import { Device, dtypeBlock, isQuantized } from '../src/runtime/index.js';
import { randomCheckpoint } from '../src/model/random-checkpoint.js';
import { exportQwen3Gguf, type GgufWeightDType } from '../src/model/gguf/index.js';
import { writeTinyTokenizer } from '../test/model/gguf/tiny-model.js';
import { cacheDir } from './checkpoints.js';
import { measureCeiling } from './kernels.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { checkQuiet, markdownTable, runInfo, saveResults, type Row } from './results.js';

const SHAPE = { hidden: 2048, numHeads: 32, numKvHeads: 4, headDim: 128, moeIntermediate: 768, denseIntermediate: 6144 };
const DTYPES: GgufWeightDType[] = ['bf16', 'f16', 'f32', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Bytes per weight of a GGUF element type. */
function bytesPerWeight(dtype: GgufWeightDType): number {
  if (isQuantized(dtype)) return dtypeBlock[dtype].bytes / dtypeBlock[dtype].elements;
  return dtype === 'f32' ? 4 : 2;
}

interface Sample {
  prefill: number;
  decode: number;
}

/** Prefill and decode tok/s from the arrival times of the tokens (the first one ends the prefill). */
function rates(promptTokens: number, start: number, arrivals: number[]): Sample {
  const decodeTokens = arrivals.length - 1;
  return { prefill: promptTokens / ((arrivals[0] - start) / 1000), decode: decodeTokens / ((arrivals[decodeTokens] - arrivals[0]) / 1000) };
}

async function runParalon(model: Model, prompt: number[], decodeTokens: number): Promise<Sample> {
  const arrivals: number[] = [];
  const start = performance.now();
  // logprobs on: each token is its own event the moment it is sampled (bench/e2e.ts does the same).
  for await (const e of model.generate(prompt, { temperature: 0, maxTokens: 1 + decodeTokens, ignoreEos: true, logprobs: true }))
    if (e.type === 'delta') for (let i = 0; i < e.tokenIds.length; i++) arrivals.push(performance.now());
  return rates(prompt.length, start, arrivals);
}

async function runLlamaCpp(peer: LlamaCppPeer, prompt: number[], decodeTokens: number): Promise<Sample> {
  const arrivals: number[] = [];
  const start = performance.now();
  await peer.greedy(prompt, 1 + decodeTokens, (_, at) => arrivals.push(at));
  return rates(prompt.length, start, arrivals);
}

/** bench/.cache/e2e-moe-…/model-<dtype>.gguf, written (checkpoint, tokenizer, export) if absent. */
function cachedMoeGguf(layers: number, experts: number, topK: number, vocab: number, dtype: GgufWeightDType): string {
  const s = SHAPE;
  const dir = path.join(cacheDir, `e2e-moe-${layers}l-${experts}e-v${vocab}`);
  const file = path.join(dir, `model-${dtype}.gguf`);
  if (existsSync(file)) return file;
  const marker = path.join(dir, 'complete');
  if (!existsSync(marker)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.error(`writing a scaled Qwen3-30B-A3B checkpoint to ${dir}: ${layers} layers, ${experts} experts, top-${topK}, vocab ${vocab} (bf16)…`);
    randomCheckpoint({
      dir, hiddenSize: s.hidden, numHeads: s.numHeads, numKvHeads: s.numKvHeads, headDim: s.headDim,
      intermediateSize: s.denseIntermediate, numLayers: layers, vocabSize: vocab, tieWordEmbeddings: false, dtype: 'bf16',
      eosTokenIds: [99], moe: { numExperts: experts, numExpertsPerTok: topK, moeIntermediateSize: s.moeIntermediate, normTopkProb: true },
    });
    writeTinyTokenizer(dir);
    writeFileSync(marker, '');
  }
  const t0 = performance.now();
  console.error(`exporting ${file}…`);
  exportQwen3Gguf(dir, `${file}.partial`, { dtype });
  renameSync(`${file}.partial`, file);
  console.error(`  exported in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return file;
}

export async function benchE2eMoe(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: 'string', default: String(Math.min(2, os.cpus().length)) },
      layers: { type: 'string', default: '4' },
      experts: { type: 'string', default: '32' },
      vocab: { type: 'string', default: '32000' },
      dtype: { type: 'string', default: 'bf16' },
      'prompt-tokens': { type: 'string', default: '64' },
      'decode-tokens': { type: 'string', default: '24' },
      reps: { type: 'string', default: '3' },
      'no-llamacpp': { type: 'boolean', default: false },
    },
  });
  const n = (key: 'threads' | 'layers' | 'experts' | 'vocab' | 'prompt-tokens' | 'decode-tokens' | 'reps') => {
    const v = Number(values[key]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${key} must be a positive integer`);
    return v;
  };
  const [threads, layers, experts, vocab, promptTokens, decodeTokens, reps] =
    (['threads', 'layers', 'experts', 'vocab', 'prompt-tokens', 'decode-tokens', 'reps'] as const).map(n);
  const dtype = values.dtype as GgufWeightDType;
  if (!DTYPES.includes(dtype)) throw new Error(`--dtype: one of ${DTYPES.join(', ')}`);
  if (experts % 16 !== 0) throw new Error('--experts must be a multiple of 16 (top-k = experts / 16, the real 8-of-128 ratio)');
  const topK = experts / 16;
  const s = SHAPE;

  // Weights one decode token reads: matrices in the file's type, the router in F32.
  const b = bytesPerWeight(dtype);
  const qkvo = s.hidden * (s.numHeads + 2 * s.numKvHeads) * s.headDim + s.numHeads * s.headDim * s.hidden;
  const activeBytes = layers * (b * (qkvo + topK * 3 * s.hidden * s.moeIntermediate) + 4 * experts * s.hidden) + b * vocab * s.hidden;

  const gguf = cachedMoeGguf(layers, experts, topK, vocab, dtype);
  const context = promptTokens + decodeTokens + 8;
  await checkQuiet();
  const probe = Device.open('cpu', { threads });
  const peak = await measureCeiling(probe, threads);
  probe.dispose();
  console.error(`ceiling: ${peak.name}: ${peak.gbps.toFixed(1)} GB/s; ${(activeBytes / 1e6).toFixed(0)} MB of weights per decode token`);
  const prompt = (seed: number) => Array.from({ length: promptTokens }, (_, i) => (i * 7919 + seed * 104_729) % 97); // the tokenizer's own ids
  // One engine at a time, the other closed: on a 2-core machine an idle engine's threads (llama.cpp's
  // spin-waiting pool, Paralon's engine loop) would take cores from the one being timed.
  const ours: Sample[] = [];
  const model = await loadModel(gguf, { device: 'cpu', threads, maxModelLen: context, maxNumSeqs: 1, prefixCaching: false });
  try {
    await runParalon(model, prompt(999), 2); // warm-up: pages the weights in
    for (let r = 0; r < reps; r++) {
      ours.push(await runParalon(model, prompt(r), decodeTokens));
      console.error(`Paralon rep ${r + 1}/${reps}: prefill ${ours[r].prefill.toFixed(1)} tok/s, decode ${ours[r].decode.toFixed(2)} tok/s`);
    }
  } finally {
    model.dispose();
  }
  const theirs: Sample[] = [];
  let peerDescription = '';
  if (!values['no-llamacpp']) {
    const peer = await LlamaCppPeer.open(gguf, { threads, contextSize: context, batchSize: 512, kvCacheType: 'F16', flashAttention: 'auto' });
    peerDescription = peer.description;
    try {
      await runLlamaCpp(peer, prompt(999), 2);
      for (let r = 0; r < reps; r++) {
        theirs.push(await runLlamaCpp(peer, prompt(r), decodeTokens));
        console.error(`llama.cpp rep ${r + 1}/${reps}: prefill ${theirs[r].prefill.toFixed(1)} tok/s, decode ${theirs[r].decode.toFixed(2)} tok/s`);
      }
    } finally {
      await peer.dispose();
    }
  }
  const load = os.loadavg().map((x) => x.toFixed(1)).join(', ');
  const roofline = (peak.gbps * 1e9) / activeBytes;
  const label = `Qwen3-30B-A3B scaled: ${layers} layers, ${experts} experts top-${topK}, vocab ${vocab}, ${dtype.toUpperCase()} GGUF`;
  const row = (engine: string, xs: Sample[]): Row => {
    const decode = median(xs.map((x) => x.decode));
    return { engine, 'prefill tok/s': median(xs.map((x) => x.prefill)), 'decode tok/s': decode, 'roofline tok/s': roofline, '% of roofline': (100 * decode) / roofline };
  };
  const rows: Row[] = [row('Paralon (cpu, bf16 KV)', ours)];
  if (theirs.length) {
    rows.push(row('llama.cpp (F16 KV, flash attention auto)', theirs));
    rows.push({
      engine: 'Paralon / llama.cpp',
      'prefill tok/s': median(ours.map((x) => x.prefill)) / median(theirs.map((x) => x.prefill)),
      'decode tok/s': median(ours.map((x) => x.decode)) / median(theirs.map((x) => x.decode)),
      'roofline tok/s': '',
      '% of roofline': '',
    });
  }
  const command = `npm run bench -- e2e-moe ${argv.join(' ')}`.trim();
  const notes = `${label}. Command: \`${command}\`. Ceiling: ${peak.name} = ${peak.gbps.toFixed(1)} GB/s, measured in the same run; ` +
    `${(activeBytes / 1e6).toFixed(0)} MB of weights per decode token (attention, the F32 router, the ${topK} chosen experts, the LM head). ` +
    `Prompt ${promptTokens} tokens, ${decodeTokens} decoded tokens, median of ${reps} repetitions after a warm-up, one engine after the other. ` +
    `Load average at the end (1, 5, 15 min): ${load}.${peerDescription ? ` Peer: ${peerDescription}.` : ''}\n`;
  const name = `e2e-moe-cpu${dtype === 'bf16' ? '' : `-${dtype}`}`;
  const files = saveResults(name, runInfo('e2e-moe', `cpu, ${threads} threads`), { shape: { name: `Qwen3-30B-A3B (${layers} layers, ${experts} experts, ${dtype})` }, threads, reps, promptTokens, decodeTokens, peak, activeBytes, loadAverage: os.loadavg() }, rows, notes);
  process.stdout.write(markdownTable(rows));
  console.error(`saved ${files.join(', ')}`);
}
