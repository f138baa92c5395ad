// `npm run bench -- crosscheck-quant [--types Q8_0,Q4_K_M,Q6_K] [--threads N] [--random-rows N]
// [--cpu-precision exact|fast]`: Paralon's quantized formats against llama.cpp (node-llama-cpp 3.21.1)
// and a float64 referee. --cpu-precision fast runs Paralon's int8-activation path (native/cpu/
// quant_int8.cc, the same activation rounding as llama.cpp's) and saves crosscheck-quant-fast.{json,md}.
//
// 1. Blocks: fresh random rows (several scales, seeded by the date-independent --seed) plus the
//    adversarial rows of test/quant/golden-cases.ts (zeros, spikes, huge/tiny/sub-epsilon scales, ties),
//    quantized by llama.cpp's quantize_row_*_ref and by src/quant: identical bytes; dequantized by
//    llama.cpp's dequantize_row_* and by src/quant ('ggml-f32' arithmetic): identical f32 bits. Q8_0,
//    Q4_K, Q5_K, Q6_K.
// 2. End to end, per file type: the small random Qwen3 of bench/crosscheck.ts (Qwen3's tokenizer and
//    vocabulary) exported by llama-quantize's recipe with llama.cpp's own quantizer, the same GGUF in
//    Paralon (cpu, f32 KV cache) and in llama.cpp (CPU, F32 KV, flash attention off), and a float64
//    forward pass of the GGUF's dequantized weights (test/model/reference.ts). Per prompt (five, one of
//    500+ tokens): the next-token top-20 probabilities (Paralon vs llama.cpp, each vs f64), 32-token
//    greedy continuations (identical, or where they part: the f64 margin between the two tokens, and
//    which one f64 picks), and along Paralon's continuation the largest |p − p_f64| of each chosen token.
//
// Pass: bytes and bits identical; per prompt, greedy identical, or parting at a near tie (f64 margin
// < 1e-2) or where f64 picks Paralon's token; and top-20 probabilities within 1e-2 of llama.cpp's or
// closer than llama.cpp's to f64.
// Results: bench/results/crosscheck-quant.{json,md}.
import { readFileSync, writeFileSync, mkdtempSync, rmSync, openSync, readSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/index.js';
import type { CpuPrecision } from '../src/runtime/index.js';
import { dequantize, quantize } from '../src/quant/index.js';
import { quantDTypes, dtypeBlock, type QuantDType } from '../src/runtime/dtype.js';
import { GGUF_FILE_TYPES, hfTensorName, readGgufHeader, type GgmlTypeName, type GgufFileType } from '../src/model/gguf/index.js';
import { goldenInputs } from '../test/quant/golden-cases.js';
import { Rng } from '../test/reference/random.js';
import { ReferenceQwen3 } from '../test/model/reference.js';
import { cachedCheckpoint, cachedQuantGguf } from './checkpoints.js';
import { buildPrompts, collect, firstDifference, SMALL } from './crosscheck.js';
import { ggmlShim } from './peers/ggml-quantizer.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { markdownTable, runInfo, saveResults, type Row } from './results.js';

const TOP_N = 20;
const GREEDY = 32;
const PROB_TOLERANCE = 1e-2;
const NEAR_TIE = 1e-2;
const QUANT_OF: Partial<Record<GgmlTypeName, QuantDType>> = { Q8_0: 'q8_0', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k' };

function blockRows(randomRows: number, seed: number): { names: string[]; values: Float32Array } {
  const rng = new Rng(`crosscheck-quant ${seed}`);
  const rows = goldenInputs().map((g) => ({ name: g.name, values: g.values }));
  const scales = [1, 0.02, 300, 1e-4];
  for (let r = 0; r < randomRows; r++) {
    const s = scales[r % scales.length];
    rows.push({ name: `random ×${s} #${r}`, values: Float32Array.from({ length: 256 }, () => s * rng.normal()) });
  }
  const values = new Float32Array(rows.length * 256);
  rows.forEach((r, i) => values.set(r.values, i * 256));
  return { names: rows.map((r) => r.name), values };
}

/** llama.cpp's blocks and dequantized values vs ours, per format. */
function checkBlocks(lib: string, binary: string, values: Float32Array): Row[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-crosscheck-quant-'));
  try {
    writeFileSync(path.join(dir, 'in.f32'), values);
    execFileSync(binary, [lib, path.join(dir, 'in.f32'), dir], { stdio: 'inherit' });
    return quantDTypes.map((d) => {
      const theirs = new Uint8Array(readFileSync(path.join(dir, `${d}.q`)));
      const theirValues = new Float32Array(new Uint8Array(readFileSync(path.join(dir, `${d}.f32`))).buffer);
      const ours = quantize(values, d);
      let byteDiffs = 0;
      for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) byteDiffs++;
      // Dequantize llama.cpp's blocks (so a quantizer difference cannot hide a dequantizer one).
      const deq = Float32Array.from(dequantize(theirs, d, { arithmetic: 'ggml-f32' }));
      const a = new Uint32Array(deq.buffer);
      const b = new Uint32Array(theirValues.buffer);
      let bitDiffs = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) bitDiffs++;
      const blocks = values.length / dtypeBlock[d].elements;
      return { check: 'blocks', case: d, blocks, 'bytes differing': byteDiffs, 'f32 values differing': bitDiffs, result: byteDiffs === 0 && bitDiffs === 0 && ours.length === theirs.length ? 'pass' : 'FAIL' };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The GGUF's matrices dequantized (f64), under their HF names; F32 tensors as they are. */
function dequantizedWeights(file: string): Map<string, Float64Array> {
  const header = readGgufHeader(file);
  const fd = openSync(file, 'r');
  const out = new Map<string, Float64Array>();
  try {
    for (const t of header.tensors) {
      const bytes = new Uint8Array(t.byteLength);
      readSync(fd, bytes, 0, t.byteLength, t.fileOffset);
      const q = QUANT_OF[t.type];
      const name = hfTensorName(t.name);
      if (!name) throw new Error(`${file}: no HF name for ${t.name}`);
      if (q) out.set(name, dequantize(bytes, q));
      else if (t.type === 'F32') out.set(name, Float64Array.from(new Float32Array(bytes.buffer)));
      else throw new Error(`${file}: ${t.name} is ${t.type}`);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function softmax(logits: Float64Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  const p = Float64Array.from(logits, (v) => Math.exp(v - max));
  for (const v of p) sum += v;
  return p.map((v) => v / sum);
}

export async function benchCrosscheckQuant(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      types: { type: 'string', default: 'Q8_0,Q4_K_M,Q6_K' },
      threads: { type: 'string', default: '2' },
      'random-rows': { type: 'string', default: '4096' },
      seed: { type: 'string', default: '1' },
      'cpu-precision': { type: 'string', default: 'exact' },
    },
  });
  const precision = values['cpu-precision'] as CpuPrecision;
  if (precision !== 'exact' && precision !== 'fast') throw new Error(`--cpu-precision: exact or fast, not ${precision}`);
  const types = values.types!.split(',') as GgufFileType[];
  for (const t of types) if (!(t in GGUF_FILE_TYPES) || !GGUF_FILE_TYPES[t].base.startsWith('Q')) throw new Error(`--types: quantized file types (${Object.keys(GGUF_FILE_TYPES).join(', ')}), not ${t}`);
  const threads = Number(values.threads);
  const rows: Row[] = [];
  const details: Record<string, unknown>[] = [];
  let failures = 0;

  const shim = ggmlShim();
  try {
    const { names, values: blockValues } = blockRows(Number(values['random-rows']), Number(values.seed));
    for (const r of checkBlocks(shim.lib, shim.binary, blockValues)) {
      if (r.result !== 'pass') failures++;
      rows.push(r);
      console.error(`blocks ${r.case}: ${r.blocks} blocks, ${r['bytes differing']} bytes and ${r['f32 values differing']} values differing`);
    }
    details.push({ blockRows: names.length, adversarialRows: goldenInputs().map((g) => g.name) });
  } finally {
    shim.dispose();
  }

  const dir = cachedCheckpoint('crosscheck-small-f32', SMALL);
  const base = ReferenceQwen3.load(dir);
  for (const type of types) {
    const gguf = cachedQuantGguf(dir, type);
    const referee = base.withWeights(dequantizedWeights(gguf));
    const mix = Object.entries(readGgufHeader(gguf).tensors.reduce<Record<string, number>>((m, t) => ((m[t.type] = (m[t.type] ?? 0) + 1), m), {}))
      .map(([t, n]) => `${n} ${t}`)
      .join(', ');
    const model = await loadModel(gguf, { device: 'cpu', threads, cpuPrecision: precision, kvCacheDType: 'f32', prefixCaching: false, kvCacheMemory: 2 ** 28 });
    if (model.device.precision !== precision) throw new Error(`--cpu-precision ${precision}: this CPU runs ${model.device.precision} (${model.device.description})`);
    const peer = await LlamaCppPeer.open(gguf, { threads, contextSize: 2048, batchSize: 512, kvCacheType: 'F32', flashAttention: false });
    try {
      console.error(`${type} (${mix}): Paralon ${model.device.description}, f32 KV; ${peer.description}`);
      for (const p of buildPrompts(model)) {
        const t0 = performance.now();
        const first = await collect(model, p.ids, 1, TOP_N);
        const llamaProbs = await peer.nextTokenProbabilities(p.ids);
        const ours = await collect(model, p.ids, GREEDY, 2);
        const theirs = await peer.greedy(p.ids, GREEDY);
        const diverge = firstDifference(ours.tokens, theirs);
        // f64 over the prompt and Paralon's continuation (teacher-forced): logits before each greedy token.
        const f64 = referee.lastLogits([...p.ids, ...ours.tokens.slice(0, GREEDY - 1)], GREEDY).map(softmax);
        let dParalonLlama = 0;
        let dParalonF64 = 0;
        let dLlamaF64 = 0;
        for (const t of first.logprobs[0].top) {
          const pp = Math.exp(t.logprob);
          const pl = llamaProbs.get(t.tokenId) ?? 0;
          const pf = f64[0][t.tokenId];
          dParalonLlama = Math.max(dParalonLlama, Math.abs(pp - pl));
          dParalonF64 = Math.max(dParalonF64, Math.abs(pp - pf));
          dLlamaF64 = Math.max(dLlamaF64, Math.abs(pl - pf));
        }
        let chosenParalonF64 = 0;
        let f64Agrees = 0;
        for (let i = 0; i < GREEDY; i++) {
          chosenParalonF64 = Math.max(chosenParalonF64, Math.abs(Math.exp(ours.logprobs[i].logprob) - f64[i][ours.tokens[i]]));
          let arg = 0;
          for (let v = 1; v < f64[i].length; v++) if (f64[i][v] > f64[i][arg]) arg = v;
          if (arg === ours.tokens[i]) f64Agrees++;
        }
        // Where the engines part, the f64 probabilities of the two tokens (a near tie excuses it).
        const part = diverge >= 0 ? { paralon: f64[diverge][ours.tokens[diverge]], llamaCpp: f64[diverge][theirs[diverge]] } : null;
        const margin = part ? Math.abs(part.paralon - part.llamaCpp) : null;
        // Parting is excused at a near tie, or where f64 picks Paralon's token (llama.cpp's int8
        // activations are then the larger error).
        const greedyOk = diverge === -1 || (margin !== null && margin < NEAR_TIE) || part!.paralon >= part!.llamaCpp;
        const probOk = dParalonLlama <= PROB_TOLERANCE || dParalonF64 <= dLlamaF64;
        const ok = greedyOk && probOk;
        if (!ok) failures++;
        rows.push({
          check: type,
          precision,
          case: p.name,
          tokens: p.ids.length,
          'top-20 Δp vs llama.cpp': dParalonLlama,
          'Paralon vs f64': dParalonF64,
          'llama.cpp vs f64': dLlamaF64,
          'chosen-token Δp vs f64 (32)': chosenParalonF64,
          'greedy 32': diverge === -1 ? 'identical' : `part at ${diverge} (f64 margin ${margin!.toExponential(1)}, f64 picks ${part!.paralon >= part!.llamaCpp ? 'Paralon' : 'llama.cpp'})`,
          'f64 argmax = Paralon': `${f64Agrees}/${GREEDY}`,
          result: ok ? 'pass' : 'FAIL',
        });
        details.push({ type, precision, prompt: p.name, promptTokens: p.ids.length, greedyParalon: ours.tokens, greedyLlamaCpp: theirs, firstDifference: diverge, f64AtDivergence: part, dParalonLlama, dParalonF64, dLlamaF64, chosenParalonF64, f64Agrees });
        console.error(`  ${p.name}: ${p.ids.length} tokens, Δp ${dParalonLlama.toExponential(2)} (vs f64: ours ${dParalonF64.toExponential(2)}, llama.cpp ${dLlamaF64.toExponential(2)}), greedy ${diverge === -1 ? 'identical' : `parts at ${diverge}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
    } finally {
      await peer.dispose();
      model.dispose();
    }
  }

  const notes =
    `Blocks: llama.cpp's quantize_row_*_ref / dequantize_row_* (node-llama-cpp 3.21.1 libggml-base.so) vs src/quant on ${Number(values['random-rows'])} random rows (scales 1, 0.02, 300, 1e-4) + ${goldenInputs().length} adversarial rows of 256 values.\n` +
    `End to end: the small random Qwen3 of bench/crosscheck.ts (hidden ${SMALL.hiddenSize}, ${SMALL.numLayers} layers, vocab ${SMALL.vocabSize}, untied) as ${types.join(', ')} GGUFs (llama-quantize's recipe, llama.cpp's quantizer), ` +
    `Paralon (cpu, ${threads} threads, f32 KV, CPU precision ${precision}${precision === 'fast' ? ': int8 activations (q8_0/q8_K) and integer dot products up to 16 rows, AMX-BF16 tiles on bf16-rounded x and dequantized W above where the CPU has AMX' : ''}) vs llama.cpp (CPU, F32 KV, flash attention off), and f64 = a float64 forward of the GGUF's dequantized weights. ` +
    `Δp: max |p − p'| over Paralon's next-token top-${TOP_N}; chosen-token Δp: max over Paralon's ${GREEDY} greedy tokens of |p_Paralon − p_f64| of the chosen token. ` +
    `Pass: greedy identical, or parting at a near tie (f64 margin < ${NEAR_TIE}) or where f64 picks Paralon's token; and top-20 Δp ≤ ${PROB_TOLERANCE} or Paralon closer to f64 than llama.cpp. ` +
    `${failures === 0 ? 'All checks passed.' : `${failures} check(s) FAILED.`}`;
  // Two tables: the blocks (the main rows) and the end-to-end prompts (their own columns).
  const blockRowsOut = rows.filter((r) => r.check === 'blocks');
  const e2eRows = rows.filter((r) => r.check !== 'blocks');
  const files = saveResults(precision === 'fast' ? 'crosscheck-quant-fast' : 'crosscheck-quant', runInfo('crosscheck-quant', 'cpu'), { types, precision, failures, details, e2eRows }, blockRowsOut, notes, `\n## End to end\n\n${markdownTable(e2eRows)}`);
  console.log(notes);
  console.log(files.join('\n'));
  if (failures > 0) process.exitCode = 1;
}
