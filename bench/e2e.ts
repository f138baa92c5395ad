// `npm run bench -- e2e [--model-shape 0.6b|8b] [--threads N] [--prompt-tokens N] [--decode-tokens N]
// [--reps N] [--peer-dtypes bf16,f16] [--batch 1,4,16|none] [--batch-prompt-tokens N]
// [--quant Q8_0,Q4_K_M,Q6_K] [--cpu-precision exact|fast, with --quant a list: exact,fast]`: end-to-end
// prefill and decode speed at batch 1, then batched decode, Paralon side by side with llama.cpp
// (node-llama-cpp 3.21.1 on the CPU, installed on demand) on the same random-weight bf16 checkpoint
// with the model's exact shapes, converted to GGUF for llama.cpp: BF16 (the same bytes), and F16 (the
// same values, all exactly representable) because llama.cpp's CPU BF16 matmul is only fast with
// AVX-512 BF16 — on an AVX2 machine its F16 path (F16C) is its best showing.
//
// One repetition, per engine: a fresh random prompt (ids of ordinary tokens, so neither side reuses a
// cached prefix), generated greedily for 1 + decode-tokens tokens. Prefill tok/s = prompt tokens / time
// to the first token; decode tok/s = decode tokens / time from the first token to the last; medians
// over the repetitions, after one warm-up. The engines run one after the other, each alone in the
// process (the other unloaded): two thread pools in one process would take cores from each other.
//
// Batched (--batch): B such generations started together on B different prompts of
// --batch-prompt-tokens tokens; decode tok/s is aggregated over the B sequences while all of them
// decode (bench/e2e-batched.ts). Paralon runs them through its engine (continuous batching, as the
// server does); llama.cpp through one context with B sequences, which node-llama-cpp evaluates in
// shared llama_decode batches.
//
// Each engine runs as its users would run it: Paralon through the library API (engine, scheduler,
// sampling; bf16 KV cache, its default), llama.cpp through a node-llama-cpp context sequence with its
// own defaults (F16 KV cache, flash attention "auto"). Both use the same number of threads.
//
// --cpu-precision: Paralon's CPU matmul precision (fast: bf16 activations — AMX tiles or AVX512-BF16
// dot products where the CPU has them; the table names what was in effect). --peer-dtypes none: no
// llama.cpp runs (a quick A/B of Paralon alone).
//
// --quant: the same runs on quantized GGUF files instead, both engines reading one file per type
// (bench/e2e-quant.ts).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../src/index.js';
import type { CpuPrecision } from '../src/runtime/index.js';
import { cachedCheckpoint, cachedGguf, shapeSpec } from './checkpoints.js';
import { generateTogether, runLlamaCppBatch, runParalonBatch, type BatchSample } from './e2e-batched.js';
import { GGUF_FILE_TYPES, type GgufFileType, type GgufWeightDType } from '../src/model/gguf/index.js';
import { benchE2eQuant, checkDiskForQuant } from './e2e-quant.js';
import type { ModelShape } from './shapes.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { markdownTable, runInfo, saveResults, checkQuiet, type Row } from './results.js';
import { modelShapes } from './shapes.js';

export interface Sample {
  prefillTokPerS: number;
  decodeTokPerS: number;
}

export interface E2eSettings {
  shape: ModelShape;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  reps: number;
  batches: number[];
  batchPromptTokens: number;
}

/** A deterministic random prompt of ordinary (non-special) token ids. */
export function randomPrompt(length: number, seed: number): number[] {
  let x = (seed * 0x9e3779b9) >>> 0 || 1;
  const ids: number[] = [];
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    ids.push(x % 150_000);
  }
  return ids;
}

/** `start`: when generation was asked for; `arrivals`: when each token came (performance.now()). */
function rates(promptTokens: number, start: number, arrivals: number[]): Sample {
  const first = arrivals[0] - start;
  const rest = arrivals[arrivals.length - 1] - arrivals[0];
  return { prefillTokPerS: promptTokens / (first / 1000), decodeTokPerS: (arrivals.length - 1) / (rest / 1000) };
}

export async function runParalon(model: Model, prompt: number[], decodeTokens: number): Promise<Sample> {
  const arrivals: number[] = [];
  const start = performance.now();
  // logprobs on: each token is its own event the moment it is sampled, even when its text is not yet
  // whole UTF-8 (random tokens often are not), so arrival times are per token.
  for await (const e of model.generate(prompt, { temperature: 0, maxTokens: 1 + decodeTokens, ignoreEos: true, logprobs: true })) {
    if (e.type === 'delta') for (let i = 0; i < e.tokenIds.length; i++) arrivals.push(performance.now());
  }
  if (arrivals.length !== 1 + decodeTokens) throw new Error(`Paralon produced ${arrivals.length} tokens, expected ${1 + decodeTokens}`);
  return rates(prompt.length, start, arrivals);
}

export async function runLlamaCpp(peer: LlamaCppPeer, prompt: number[], decodeTokens: number): Promise<Sample> {
  const arrivals: number[] = [];
  const start = performance.now();
  await peer.greedy(prompt, 1 + decodeTokens, (_, at) => arrivals.push(at));
  return rates(prompt.length, start, arrivals);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `--batch`: batch sizes for the batched decode runs; 'none' for none. */
function parseBatches(value: string): number[] {
  if (value === 'none' || value === '') return [];
  const sizes = value.split(',').map(Number);
  for (const b of sizes) if (!Number.isInteger(b) || b < 1) throw new Error(`--batch: positive integers separated by commas (or none), not ${value}`);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** B different prompts for repetition `rep` of a batched run. */
export function batchPrompts(batch: number, length: number, rep: number): number[][] {
  return Array.from({ length: batch }, (_, s) => randomPrompt(length, 10_000 + 100 * rep + s));
}

export async function benchE2e(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'model-shape': { type: 'string', default: '0.6b' },
      threads: { type: 'string', default: String(Math.min(2, os.cpus().length)) },
      'prompt-tokens': { type: 'string', default: '512' },
      'decode-tokens': { type: 'string', default: '32' },
      reps: { type: 'string', default: '3' },
      'peer-dtypes': { type: 'string', default: 'bf16,f16' },
      batch: { type: 'string', default: '1,4,16' },
      'batch-prompt-tokens': { type: 'string', default: '128' },
      quant: { type: 'string' },
      'cpu-precision': { type: 'string', default: 'exact' },
    },
  });
  const shape = modelShapes[values['model-shape']!];
  if (!shape) throw new Error(`--model-shape: one of ${Object.keys(modelShapes).join(', ')}`);
  const threads = Number(values.threads);
  const promptTokens = Number(values['prompt-tokens']);
  const decodeTokens = Number(values['decode-tokens']);
  const reps = Number(values.reps);
  const batchPromptTokens = Number(values['batch-prompt-tokens']);
  for (const [k, v] of Object.entries({ threads, promptTokens, decodeTokens, reps, batchPromptTokens }))
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
  const batches = parseBatches(values.batch!);
  const maxBatch = Math.max(1, ...batches);

  if (values.quant) {
    const types = values.quant.split(',') as GgufFileType[];
    for (const t of types) if (!(t in GGUF_FILE_TYPES) || !GGUF_FILE_TYPES[t].base.startsWith('Q')) throw new Error(`--quant: quantized file types, not ${t}`);
    const precisions = [...new Set(values['cpu-precision']!.split(','))] as CpuPrecision[];
    for (const p of precisions) if (p !== 'exact' && p !== 'fast') throw new Error(`--cpu-precision: exact, fast or exact,fast, not ${p}`);
    checkDiskForQuant(`e2e-qwen3-${values['model-shape']}-bf16`, shape, types);
    await checkQuiet();
    const dir = cachedCheckpoint(`e2e-qwen3-${values['model-shape']}-bf16`, shapeSpec(shape, 'bf16'));
    return benchE2eQuant({ shape, threads, promptTokens, decodeTokens, reps, batches, batchPromptTokens }, types, dir, precisions);
  }
  const cpuPrecision = values['cpu-precision'];
  if (cpuPrecision !== 'exact' && cpuPrecision !== 'fast') throw new Error(`--cpu-precision: exact or fast, not ${cpuPrecision}`);
  const peerDTypes = (values['peer-dtypes'] === 'none' ? [] : values['peer-dtypes']!.split(',')) as GgufWeightDType[];
  for (const d of peerDTypes) if (d !== 'bf16' && d !== 'f16' && d !== 'f32') throw new Error(`--peer-dtypes: bf16, f16 or f32, not ${d}`);
  const dir = cachedCheckpoint(`e2e-qwen3-${values['model-shape']}-bf16`, shapeSpec(shape, 'bf16'));
  const contextSize = 2048;
  if (promptTokens + decodeTokens + 1 > contextSize) throw new Error(`prompt + decode tokens must fit the ${contextSize}-token context`);
  // Batched runs: each sequence's own context (llama.cpp pads to multiples of 256 anyway), and a
  // Paralon KV cache that holds all B sequences at once (no preemption).
  const batchContext = Math.ceil((batchPromptTokens + decodeTokens + 1) / 256) * 256;
  if (batchContext > contextSize) throw new Error(`batch prompt + decode tokens must fit the ${contextSize}-token context`);
  const kvBytesPerToken = 2 * shape.numLayers * shape.numKvHeads * shape.headDim * 2; // K and V, bf16
  const batchKvBytes = Math.max(2 ** 30, kvBytesPerToken * maxBatch * (Math.ceil((batchPromptTokens + decodeTokens + 1) / 16) + 1) * 16);

  await checkQuiet();
  console.error(`${shape.name}-shaped bf16, ${threads} threads, ${promptTokens}-token prompts, ${decodeTokens} decoded tokens, ${reps} repetitions (+1 warm-up)`);
  if (batches.length) console.error(`batched decode at B = ${batches.join(', ')}, ${batchPromptTokens}-token prompts`);
  const report = (engine: string, r: number, x: Sample) =>
    console.error(`${engine} rep ${r + 1}/${reps}: prefill ${x.prefillTokPerS.toFixed(1)} tok/s, decode ${x.decodeTokPerS.toFixed(2)} tok/s`);
  const reportBatch = (engine: string, b: number, r: number, x: BatchSample) =>
    console.error(
      `${engine} B=${b} rep ${r + 1}/${reps}: decode ${x.decodeTokPerS.toFixed(2)} tok/s aggregate (${x.windowTokens} tokens in ${x.windowSeconds.toFixed(2)} s), prefill ${x.prefillTokPerS.toFixed(1)} tok/s`,
    );

  const paralon: Sample[] = [];
  const model = await loadModel(dir, { device: 'cpu', threads, cpuPrecision, prefixCaching: false, maxNumSeqs: 1, maxNumBatchedTokens: 512, maxModelLen: contextSize });
  const paralonPrecision = model.device.precision;
  const paralonDevice = `${model.device.description}; precision ${paralonPrecision}`;
  console.error(`Paralon device: ${paralonDevice}`);
  try {
    await runParalon(model, randomPrompt(promptTokens, 1000), 2); // warm-up: pages the weights in
    for (let r = 0; r < reps; r++) {
      paralon.push(await runParalon(model, randomPrompt(promptTokens, r), decodeTokens));
      report('Paralon', r, paralon[r]);
    }
  } finally {
    model.dispose();
  }

  const paralonBatched: Record<number, BatchSample[]> = {};
  if (batches.length) {
    const batched = await loadModel(dir, {
      device: 'cpu',
      threads,
      cpuPrecision,
      prefixCaching: false,
      maxNumSeqs: maxBatch,
      maxNumBatchedTokens: Math.max(512, maxBatch),
      maxModelLen: contextSize,
      kvCacheMemory: batchKvBytes,
    });
    try {
      await generateTogether(batched, batchPrompts(maxBatch, 8, 1000), 2); // warm-up: short prompts, all sequences
      for (const b of batches) {
        paralonBatched[b] = [];
        for (let r = 0; r < reps; r++) {
          paralonBatched[b].push(await runParalonBatch(batched, batchPrompts(b, batchPromptTokens, r), decodeTokens));
          reportBatch('Paralon', b, r, paralonBatched[b][r]);
        }
      }
    } finally {
      batched.dispose();
    }
  }

  const peers: { dtype: GgufWeightDType; description: string; samples: Sample[]; batched: Record<number, BatchSample[]>; batchedDescription: string }[] = [];
  const peerOptions = { threads, batchSize: 512, kvCacheType: 'F16', flashAttention: 'auto' } as const;
  for (const dtype of peerDTypes) {
    const gguf = cachedGguf(dir, dtype);
    const samples: Sample[] = [];
    const peer = await LlamaCppPeer.open(gguf, { ...peerOptions, contextSize });
    try {
      await runLlamaCpp(peer, randomPrompt(promptTokens, 1000), 2);
      for (let r = 0; r < reps; r++) {
        samples.push(await runLlamaCpp(peer, randomPrompt(promptTokens, r), decodeTokens));
        report(`llama.cpp ${dtype.toUpperCase()}`, r, samples[r]);
      }
    } finally {
      await peer.dispose();
    }
    // Batched: a context with B sequences per batch size.
    const batched: Record<number, BatchSample[]> = {};
    let batchedDescription = '';
    for (const b of batches) {
      const multi = await LlamaCppPeer.open(gguf, { ...peerOptions, contextSize: batchContext, sequences: b });
      batchedDescription = multi.description;
      try {
        await multi.greedyParallel(batchPrompts(b, 8, 1000), 3); // warm-up: short prompts, all sequences
        batched[b] = [];
        for (let r = 0; r < reps; r++) {
          batched[b].push(await runLlamaCppBatch(multi, batchPrompts(b, batchPromptTokens, r), decodeTokens));
          reportBatch(`llama.cpp ${dtype.toUpperCase()}`, b, r, batched[b][r]);
        }
      } finally {
        await multi.dispose();
      }
    }
    peers.push({ dtype, description: peer.description, samples, batched, batchedDescription });
  }

  const prefill = (xs: Sample[]) => median(xs.map((x) => x.prefillTokPerS));
  const decode = (xs: Sample[]) => median(xs.map((x) => x.decodeTokPerS));
  const rows: Row[] = [{ engine: `Paralon (cpu, bf16 weights, bf16 KV, ${paralonPrecision} precision)`, 'prefill tok/s': prefill(paralon), 'decode tok/s': decode(paralon) }];
  for (const p of peers) rows.push({ engine: `llama.cpp (${p.dtype.toUpperCase()} GGUF, F16 KV)`, 'prefill tok/s': prefill(p.samples), 'decode tok/s': decode(p.samples) });
  for (const p of peers)
    rows.push({ engine: `Paralon / llama.cpp ${p.dtype.toUpperCase()}`, 'prefill tok/s': prefill(paralon) / prefill(p.samples), 'decode tok/s': decode(paralon) / decode(p.samples) });

  // Batched table: aggregate decode tok/s per batch size, and the ratios.
  const batchRows: Row[] = batches.map((b) => {
    const ours = median(paralonBatched[b].map((x) => x.decodeTokPerS));
    const row: Row = { batch: b, 'Paralon tok/s': ours };
    for (const p of peers) row[`llama.cpp ${p.dtype.toUpperCase()} tok/s`] = median(p.batched[b].map((x) => x.decodeTokPerS));
    for (const p of peers) row[`Paralon / llama.cpp ${p.dtype.toUpperCase()}`] = ours / (row[`llama.cpp ${p.dtype.toUpperCase()} tok/s`] as number);
    row[`Paralon vs its B=${batches[0]}`] = ours / median(paralonBatched[batches[0]].map((x) => x.decodeTokPerS));
    return row;
  });

  const cpuFlags = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const bf16Simd = /\bavx512_bf16\b/.test(cpuFlags) ? 'has AVX-512 BF16' : /\bavx2\b/.test(cpuFlags) ? 'has AVX2, no AVX-512 BF16 (llama.cpp\'s BF16 matmul takes its slow path)' : 'SIMD unknown';
  const notes =
    `CPU ${bf16Simd}. ${shape.name}-shaped random checkpoint (bf16), batch 1, ${threads} threads each, ${promptTokens}-token prompt, ` +
    `${decodeTokens} decoded tokens, median of ${reps} repetitions, the engines one after the other. Paralon: ${paralonDevice}. Peer: ${peers[0]?.description ?? 'none'}.`;
  const batchNotes =
    `B greedy generations started together on B different random ${batchPromptTokens}-token prompts, ${decodeTokens} decoded tokens each; ` +
    `aggregate decode tok/s (all sequences) over the steps in which all B sequences decode (bench/e2e-batched.ts), median of ${reps} repetitions. ` +
    `Paralon: one engine, continuous batching, maxNumSeqs ${maxBatch}, bf16 KV. ` +
    `llama.cpp: one context of B sequences (${batchContext} tokens each), whose tokens node-llama-cpp evaluates in shared llama_decode batches; ${peers[0]?.batchedDescription.replace(/, \d+ sequences\)$/, ')') ?? 'none'}. ` +
    `"Paralon vs its B=${batches[0]}": Paralon's aggregate decode tok/s relative to its own at the smallest batch size.`;
  const appendix = batches.length ? `\n## Batched decode\n\n${batchNotes}\n\n${markdownTable(batchRows)}` : '';
  const files = saveResults(
    `e2e-${values['model-shape']}`,
    runInfo('e2e', 'cpu'),
    {
      shape,
      threads,
      promptTokens,
      decodeTokens,
      reps,
      samples: { paralon, llamaCpp: Object.fromEntries(peers.map((p) => [p.dtype, p.samples])) },
      ...(batches.length
        ? {
            batched: {
              batches,
              promptTokens: batchPromptTokens,
              decodeTokens,
              reps,
              peerContextPerSequence: batchContext,
              samples: { paralon: paralonBatched, llamaCpp: Object.fromEntries(peers.map((p) => [p.dtype, p.batched])) },
              rows: batchRows,
            },
          }
        : {}),
    },
    rows,
    notes,
    appendix,
  );
  console.log(notes);
  for (const r of rows) console.log(`${r.engine}: prefill ${Number(r['prefill tok/s']).toFixed(2)}, decode ${Number(r['decode tok/s']).toFixed(2)}`);
  if (batches.length) console.log(`\nbatched decode, aggregate tok/s:\n${markdownTable(batchRows)}`);
  console.log(files.join('\n'));
}
