// Quantized GGUF checkpoints (Q8_0, Q4_K) load with their blocks in place and give the logits of the
// same model with the blocks dequantized (ggml's f32 arithmetic, src/quant) into an f32 safetensors
// checkpoint: a random checkpoint is exported to GGUF by the project's quantizer, then the GGUF's own
// tensors are dequantized back into a Hugging Face directory, so both sides hold identical values.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../../src/runtime/index.js';
import { isQuantized, type QuantDType } from '../../../src/runtime/dtype.js';
import { KvCachePool } from '../../../src/kv/pool.js';
import { CausalLM } from '../../../src/model/step.js';
import { writeSafetensors, type TensorToWrite } from '../../../src/model/safetensors-writer.js';
import type { RandomCheckpointOptions } from '../../../src/model/random-checkpoint.js';
import { exportQwen3Gguf, hfTensorName, openGgufModel, readGgufHeader } from '../../../src/model/gguf/index.js';
import { dequantize } from '../../../src/quant/index.js';
import { devicesUnderTest } from '../../runtime/devices.js';
import { checkpointWithTokenizer } from './tiny-model.js';

const root = mkdtempSync(path.join(tmpdir(), 'paralon-gguf-quant-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RUNTIME: Record<string, QuantDType | 'f32'> = { Q8_0: 'q8_0', Q4_K: 'q4_k', F32: 'f32' };

/** An f32 HF directory holding the GGUF's tensors dequantized (config and tokenizer from `like`). */
function dequantizedCheckpoint(file: string, like: string, dir: string): void {
  mkdirSync(dir);
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(like, f), path.join(dir, f));
  const header = readGgufHeader(file);
  const bytes = readFileSync(file);
  const tensors: TensorToWrite[] = header.tensors.map((t) => {
    const raw = new Uint8Array(bytes.buffer, bytes.byteOffset + t.fileOffset, t.byteLength);
    const dtype = RUNTIME[t.type];
    const values = isQuantized(dtype) ? Float32Array.from(dequantize(raw, dtype, { arithmetic: 'ggml-f32' })) : new Float32Array(raw.slice().buffer);
    return { name: hfTensorName(t.name)!, dtype: 'F32', shape: t.shape, data: values };
  });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

/**
 * Both sides multiply f32 activations by the same f32 weight values, so only the order of the sums
 * differs (seen: 3e-7 on the CPU) — except on CUDA devices, where a quantized matmul of more than 16
 * tokens decodes W tiles into the tensor-core GEMM, which rounds activations to 16 bits like every
 * 16-bit-weight prefill there (test/model/forward.test.ts gives those 2e-2); the decodes after it read
 * K/V written by that prefill (seen on cuda-sim: 4e-4 to 1e-3 for the prefill, 2e-4 to 5e-4 after).
 */
function tolerance(device: string): number {
  return device === 'cpu' ? 1e-4 : 2e-2;
}

// Rows of whole blocks: Q8_0 needs inputs (hidden, q width, intermediate) of multiples of 32, Q4_K of 256.
const CASES: { dtype: QuantDType; options: Omit<RandomCheckpointOptions, 'dir'> }[] = [
  { dtype: 'q8_0', options: { hiddenSize: 96, numHeads: 3, numKvHeads: 1, headDim: 64, intermediateSize: 160, vocabSize: 101, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false, seed: 11 } },
  { dtype: 'q4_k', options: { hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 100, numLayers: 1, dtype: 'f32', tieWordEmbeddings: true, seed: 12 } },
  // qwen3moe: the experts' stacked Q8_0 blocks read in place by moeMatmul; the router stays F32.
  {
    dtype: 'q8_0',
    options: { hiddenSize: 64, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 96, vocabSize: 103, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false, seed: 13, moe: { numExperts: 6, numExpertsPerTok: 2, moeIntermediateSize: 32, normTopkProb: true } },
  },
];

/** Per step (the 19-token prefill, then 3 decodes): max |Δlogit| / max |logit| of the GGUF against its dequantized twin. */
async function logitErrors(device: Device, tag: string, c: (typeof CASES)[number], referenceDevice = device): Promise<number[]> {
  const dir = checkpointWithTokenizer(path.join(root, tag), c.options);
  const file = path.join(root, `${tag}.gguf`);
  exportQwen3Gguf(dir, file, { dtype: c.dtype });
  const deq = path.join(root, `${tag}-dequantized`);
  dequantizedCheckpoint(file, dir, deq);

  const reference = await CausalLM.load(deq, referenceDevice, { maxBatchTokens: 32, maxSeqs: 2 });
  const gguf = openGgufModel(device, file);
  let quantized: CausalLM;
  try {
    quantized = await CausalLM.fromCheckpoint(device, gguf.arch, gguf.config, gguf.generation, gguf.checkpoint, { maxBatchTokens: 32, maxSeqs: 2 });
  } finally {
    gguf.checkpoint.close();
  }
  expect(quantized.config.dtype).toBe('bf16'); // a quantized file's float dtype: the KV cache's 'auto'
  const tokens = Array.from({ length: 22 }, (_, i) => (i * 41 + 3) % c.options.vocabSize!);
  const run = async (lm: CausalLM, on: Device) => {
    const kv = new KvCachePool(on, lm.kvShape, { blockSize: 8, numBlocks: 4, dtype: 'f32' });
    const table = [3, 1, 0];
    const all = lm.forward([{ tokens: tokens.slice(0, 19), numCached: 0, blockTable: table }], kv, { allLogits: true });
    const rows = [await all.read()];
    all.dispose();
    for (let t = 19; t < 22; t++) rows.push(await lm.forward([{ tokens: [tokens[t]], numCached: t, blockTable: table }], kv).read());
    kv.dispose();
    return rows;
  };
  const [want, got] = [await run(reference, referenceDevice), await run(quantized, device)];
  reference.dispose();
  quantized.dispose();
  return want.map((row, i) => {
    let maxRef = 0;
    let maxErr = 0;
    for (let j = 0; j < row.length; j++) {
      maxRef = Math.max(maxRef, Math.abs(row[j]));
      maxErr = Math.max(maxErr, Math.abs(row[j] - got[i][j]));
    }
    return maxErr / maxRef;
  });
}

for (const dev of devicesUnderTest()) {
  describe.skipIf(dev.skip !== false)(`quantized GGUF vs its dequantized weights on ${dev.label}`, () => {
    let device: Device;
    beforeAll(() => {
      device = Device.open(dev.name, { threads: 2 });
    });
    afterAll(() => device?.dispose());

    for (const c of CASES) {
      it(`${c.dtype}${c.options.moe ? ' qwen3moe' : ''}: the logits of a prefill of 19 tokens and 3 decodes`, async () => {
        const errors = await logitErrors(device, `${dev.name}-${c.options.seed}`, c);
        errors.forEach((e, i) => expect(e, `step ${i}`).toBeLessThanOrEqual(tolerance(dev.name)));
      });
    }
  });
}

// CPU fast precision (int8 activations, integer dot products: test/runtime/int8-dot.test.ts checks the
// ops): the prefill's 19 rows stay on the exact GEMM except the LM head's last row, the decodes take the
// int8 kernels throughout (MoE experts included). Against the exact twin the logits move by the
// activation rounding (q8 blocks: ≤ 1/254 of a block's largest |x| per value, in every matmul of every
// layer), which these small random f32 models amplify: seen 8e-3 to 1.6e-2 of max |logit| per decode,
// allowed 3e-2 (the ops themselves are checked exactly against the int8-rounded activations); the
// prefill's logits (19 rows: the exact GEMM) stay at 1e-6 (not MoE's: its experts see fewer rows), and
// the decodes must move (the path ran).
describe('quantized GGUF with CPU fast precision (int8 activations)', () => {
  let fast: Device, exact: Device;
  beforeAll(() => {
    process.env.PARALON_CPU_AMX = '0'; // the int8 path and the exact GEMM; quantized AMX: cpu-precision-amx-quant.test.ts
    try {
      fast = Device.open('cpu', { threads: 2, precision: 'fast' });
    } finally {
      delete process.env.PARALON_CPU_AMX;
    }
    exact = Device.open('cpu', { threads: 2 });
  });
  afterAll(() => {
    fast?.dispose();
    exact?.dispose();
  });
  for (const c of CASES) {
    it(`${c.dtype}${c.options.moe ? ' qwen3moe' : ''}: prefill of 19 tokens and 3 decodes close to the dequantized twin`, async (t) => {
      if (!fast.description.includes('int8 dot products')) t.skip(`this CPU has neither AVX2 nor AVX512-VNNI (${fast.description})`);
      const errors = await logitErrors(fast, `cpu-fast-${c.options.seed}`, c, exact);
      // A MoE expert sees ≤ 16 of the prefill's rows: the int8 kernels there too.
      expect(errors[0], 'prefill').toBeLessThanOrEqual(c.options.moe ? 3e-2 : 1e-4);
      errors.slice(1).forEach((e, i) => expect(e, `decode ${i}`).toBeLessThanOrEqual(3e-2));
      expect(Math.max(...errors.slice(1))).toBeGreaterThan(1e-4);
    });
  }
});
