// The whole Qwen3 and Qwen3-MoE forward pass on small random checkpoints against the float64
// reference (test/model/reference.ts): every logit row compared by max |Δ| / max |reference|.
// MoE cases route on CUDA with f32 weights only: the tensor-core prefill rounds the router's input
// to 16 bits, which may swap two nearly equal experts against the float64 reference.
//
// Bounds: 1e-4 with f32 weights and an f32 KV cache, and with 16-bit weights on the CPU (it widens
// them exactly); 16-bit weights on CUDA get 2e-2, because its tensor-core prefill rounds the f32
// activations to bf16/f16 (native/cuda/matmul.cu); a bf16 KV cache gets 2e-2 (K and V rounded to
// 8 mantissa bits); an f16 KV cache gets 5e-3 (11 mantissa bits). For an fp8 (e4m3, scale 1) KV cache
// the reference rounds K and V to fp8 as well (unrounded, 4 significant bits moved logits by 1.2e-1 here),
// so the bound covers f32 arithmetic and elements whose f32 and f64 values round to neighbouring codes.
import { fp8Bits, fp8Value } from '../../src/runtime/dtype.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device, type Tensor } from '../../src/runtime/index.js';
import { KvCachePool, type KvCacheDType } from '../../src/kv/pool.js';
import { CausalLM, type SequenceChunk } from '../../src/model/step.js';
import { randomCheckpoint, type RandomCheckpointOptions } from '../../src/model/random-checkpoint.js';
import { ReferenceQwen3 } from './reference.js';

interface Case {
  name: string;
  checkpoint: Omit<RandomCheckpointOptions, 'dir'>;
  kvDtype: KvCacheDType;
}

// Awkward sizes for the CPU: nothing a multiple of 16, head_dim ≠ hidden / heads.
const cpuCases: Case[] = [
  {
    name: 'tied, f32, GQA 2, head_dim 24 ≠ 44/4',
    checkpoint: { hiddenSize: 44, numHeads: 4, numKvHeads: 2, headDim: 24, intermediateSize: 76, vocabSize: 97, numLayers: 2, dtype: 'f32', tieWordEmbeddings: true },
    kvDtype: 'f32',
  },
  {
    name: 'untied, f32, GQA 1, head_dim 18, 3 shards',
    checkpoint: { hiddenSize: 52, numHeads: 3, numKvHeads: 3, headDim: 18, intermediateSize: 60, vocabSize: 83, numLayers: 3, dtype: 'f32', tieWordEmbeddings: false, numShards: 3 },
    kvDtype: 'f32',
  },
  {
    name: 'tied, bf16 weights, bf16 KV cache, GQA 3',
    checkpoint: { hiddenSize: 40, numHeads: 6, numKvHeads: 2, headDim: 14, intermediateSize: 72, vocabSize: 101, numLayers: 2, dtype: 'bf16' },
    kvDtype: 'bf16',
  },
  {
    name: 'untied, f32, f16 KV cache, GQA 3',
    checkpoint: { hiddenSize: 42, numHeads: 6, numKvHeads: 2, headDim: 22, intermediateSize: 58, vocabSize: 79, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false },
    kvDtype: 'f16',
  },
  {
    name: 'untied, f16 weights, f32 KV cache, GQA 2',
    checkpoint: { hiddenSize: 36, numHeads: 2, numKvHeads: 1, headDim: 30, intermediateSize: 50, vocabSize: 67, numLayers: 2, dtype: 'f16', tieWordEmbeddings: false },
    kvDtype: 'f32',
  },
  {
    // Relative distances up to 40 over an original context of 16: the interpolated dimensions matter.
    name: 'YaRN factor 4 over an original context of 16, f32, GQA 2',
    checkpoint: {
      hiddenSize: 46, numHeads: 4, numKvHeads: 2, headDim: 26, intermediateSize: 62, vocabSize: 79, numLayers: 2, dtype: 'f32',
      ropeTheta: 10_000, ropeScaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 16 },
    },
    kvDtype: 'f32',
  },
  {
    name: 'Qwen3-MoE, f32, 7 experts top-3 renormalised, layer 1 dense (mlp_only_layers)',
    checkpoint: {
      hiddenSize: 44, numHeads: 4, numKvHeads: 2, headDim: 22, intermediateSize: 58, vocabSize: 89, numLayers: 3, dtype: 'f32',
      moe: { numExperts: 7, numExpertsPerTok: 3, moeIntermediateSize: 26, normTopkProb: true, mlpOnlyLayers: [1] },
    },
    kvDtype: 'f32',
  },
  {
    name: 'Qwen3-MoE, bf16 experts, 5 experts top-2 not renormalised, decoder_sparse_step 2',
    checkpoint: {
      hiddenSize: 38, numHeads: 2, numKvHeads: 1, headDim: 26, intermediateSize: 46, vocabSize: 71, numLayers: 2, dtype: 'bf16', tieWordEmbeddings: false,
      moe: { numExperts: 5, numExpertsPerTok: 2, moeIntermediateSize: 30, normTopkProb: false, decoderSparseStep: 2 },
    },
    kvDtype: 'f32',
  },
  {
    name: 'untied, f32, fp8 KV cache, GQA 3',
    checkpoint: { hiddenSize: 42, numHeads: 6, numKvHeads: 2, headDim: 22, intermediateSize: 58, vocabSize: 79, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false },
    kvDtype: 'fp8',
  },
];

// The CUDA attention kernels take head_dim 64 or 128; the rest stays awkward.
const cudaCases: Case[] = [
  {
    name: 'tied, f32, GQA 2, head_dim 64 ≠ 72/4',
    checkpoint: { hiddenSize: 72, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 100, vocabSize: 97, numLayers: 2, dtype: 'f32' },
    kvDtype: 'f32',
  },
  {
    name: 'untied, f32, GQA 1, 2 shards',
    checkpoint: { hiddenSize: 56, numHeads: 2, numKvHeads: 2, headDim: 64, intermediateSize: 84, vocabSize: 89, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false, numShards: 2 },
    kvDtype: 'f32',
  },
  {
    name: 'tied, f16 weights, f16 KV cache, GQA 2',
    checkpoint: { hiddenSize: 60, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 92, vocabSize: 83, numLayers: 2, dtype: 'f16' },
    kvDtype: 'f16',
  },
  {
    name: 'tied, bf16 weights, bf16 KV cache, GQA 4',
    checkpoint: { hiddenSize: 48, numHeads: 4, numKvHeads: 1, headDim: 64, intermediateSize: 88, vocabSize: 101, numLayers: 2, dtype: 'bf16' },
    kvDtype: 'bf16',
  },
  {
    name: 'YaRN factor 3 over an original context of 14 (beta_fast 8, no truncation), f32',
    checkpoint: {
      hiddenSize: 40, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 52, vocabSize: 73, numLayers: 2, dtype: 'f32',
      ropeTheta: 10_000, ropeScaling: { type: 'yarn', factor: 3, originalMaxPositionEmbeddings: 14, betaFast: 8, truncate: false },
    },
    kvDtype: 'f32',
  },
  {
    name: 'Qwen3-MoE, f32, 6 experts top-2 renormalised',
    checkpoint: {
      hiddenSize: 40, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 52, vocabSize: 79, numLayers: 2, dtype: 'f32',
      moe: { numExperts: 6, numExpertsPerTok: 2, moeIntermediateSize: 34, normTopkProb: true },
    },
    kvDtype: 'f32',
  },
  {
    // Scales that are not powers of two move every element onto another rounding grid than scale 1's.
    name: "untied, f32, fp8 KV cache with the checkpoint's per-layer k_scale/v_scale, GQA 2",
    checkpoint: {
      hiddenSize: 60, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 92, vocabSize: 83, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false,
      kvScales: [{ k: 0.05, v: 3 }, { k: 1.7, v: 0.013 }],
    },
    kvDtype: 'fp8',
  },
];

/** Why `name` cannot be opened here, or undefined when it can. */
function unavailable(name: string): string | undefined {
  try {
    Device.open(name as 'cpu').dispose();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const cuda = Device.cudaStatus();
const devices: { name: string; cases: Case[]; skip?: string }[] = [
  { name: 'cpu', cases: [...cpuCases, ...cudaCases] },
  { name: 'cuda-sim', cases: cudaCases, skip: unavailable('cuda-sim') },
  { name: 'cuda:0', cases: cudaCases, skip: cuda.count > 0 ? undefined : cuda.reason || 'no CUDA device' },
];

/** The reference stores K and V as an fp8 cache does (x / scale rounded, times scale; scale 1 unless the
 *  checkpoint has scales); the other caches' rounding is in the bound. */
function refRun(c: Case) {
  if (c.kvDtype !== 'fp8') return {};
  const scales = c.checkpoint.kvScales;
  const scale = (which: 'k' | 'v', layer: number) => (scales ? scales[layer][which] : 1);
  return { storeKv: (x: number, which: 'k' | 'v', layer: number) => fp8Value(fp8Bits(Math.fround(x * Math.fround(1 / scale(which, layer))))) * scale(which, layer) };
}

function tolerance(c: Case, device: string): number {
  if (c.kvDtype === 'bf16') return 2e-2;
  if (c.checkpoint.dtype !== 'f32' && device !== 'cpu') return 2e-2;
  if (c.kvDtype === 'f16') return 5e-3;
  if (c.kvDtype === 'fp8') return 1e-2;
  return 1e-4;
}

const root = mkdtempSync(path.join(tmpdir(), 'paralon-forward-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

for (const dev of devices) {
  describe.skipIf(dev.skip !== undefined)(`Qwen3 forward on ${dev.name}${dev.skip ? ` (skipped: ${dev.skip})` : ''}`, () => {
    let device: Device;
    beforeAll(() => {
      device = Device.open(dev.name as 'cpu', { threads: 2 });
    });
    afterAll(() => device?.dispose());

    dev.cases.forEach((c, ci) => {
      describe(c.name, () => {
        const dir = path.join(root, `${dev.name}-${ci}`);
        let model: CausalLM;
        let ref: ReferenceQwen3;
        const tol = tolerance(c, dev.name);
        beforeAll(async () => {
          randomCheckpoint({ dir, seed: 1000 + ci, ...c.checkpoint });
          model = await CausalLM.load(dir, device, { maxBatchTokens: 64, maxSeqs: 6 });
          ref = ReferenceQwen3.load(dir);
        });
        afterAll(() => model?.dispose());

        it(`a prefill of 37 tokens (every row's logits) then 4 decodes, across blocks of 8 (bound ${tol})`, async () => {
          const rng = new Lcg(7 + ci);
          const kv = model.createKvCache({ blockSize: 8, numBlocks: 23, dtype: c.kvDtype });
          const blocks = new BlockTables(kv.numBlocks, rng);
          const tokens = rng.tokens(37, model.config.vocabSize);
          const decoded = rng.tokens(4, model.config.vocabSize);
          const expected = ref.logits([...tokens, ...decoded], refRun(c));
          const all = model.forward([{ tokens, numCached: 0, blockTable: blocks.grow(0, 37) }], kv, { allLogits: true });
          expect(all.shape).toEqual([37, model.config.vocabSize]);
          expectClose(await all.read(), expected.slice(0, 37), tol, 'prefill');
          all.dispose();
          for (let t = 37; t < 41; t++) {
            const step = [{ tokens: [decoded[t - 37]], numCached: t, blockTable: blocks.grow(0, t + 1) }];
            expectClose(await readPoisoned(model.forward(step, kv)), [expected[t]], tol, `decode at position ${t}`);
          }
          // Devices that record graphs ran those decodes as graph replays (test/model/graphs.test.ts).
          expect(model.graphCount > 0).toBe(device.supportsGraphs);
          kv.dispose();
        });

        it(`sequences of different lengths in one batch, then decodes mixed with a chunk after cached tokens (bound ${tol})`, async () => {
          const rng = new Lcg(99 + ci);
          const V = model.config.vocabSize;
          const kv = model.createKvCache({ blockSize: 8, numBlocks: 31, dtype: c.kvDtype });
          const blocks = new BlockTables(kv.numBlocks, rng);
          // Full token streams of four sequences; the steps below feed them piece by piece.
          const seqs = [rng.tokens(15, V), rng.tokens(22, V), rng.tokens(31, V), rng.tokens(7, V)];
          const expected = seqs.map((s) => ref.logits(s, refRun(c)));
          const chunk = (s: number, from: number, to: number): SequenceChunk => ({
            tokens: seqs[s].slice(from, to),
            numCached: from,
            blockTable: blocks.grow(s, to),
          });

          // Step 1: three prefills of different lengths (sequence 2 only its first 17 tokens).
          let logits = model.forward([chunk(0, 0, 13), chunk(1, 0, 1), chunk(2, 0, 17)], kv);
          expectClose(await readPoisoned(logits), [expected[0][12], expected[1][0], expected[2][16]], tol, 'step 1');

          // Step 2: decodes, sequence 1 continues with a 9-token chunk after 1 cached token,
          // sequence 2's second chunk follows its 17 cached tokens, sequence 3 starts.
          const step2 = [chunk(0, 13, 14), chunk(1, 1, 10), chunk(2, 17, 30), chunk(3, 0, 6)];
          const all = model.forward(step2, kv, { allLogits: true });
          const rows = [expected[0].slice(13, 14), expected[1].slice(1, 10), expected[2].slice(17, 30), expected[3].slice(0, 6)].flat();
          expectClose(await all.read(), rows, tol, 'step 2 (every row)');
          all.dispose();

          // Step 3: one decode each, in another order.
          logits = model.forward([chunk(1, 10, 11), chunk(0, 14, 15), chunk(3, 6, 7), chunk(2, 30, 31)], kv);
          expectClose(await readPoisoned(logits), [expected[1][10], expected[0][14], expected[3][6], expected[2][30]], tol, 'step 3');
          kv.dispose();
        });
      });
    });
  });
}

/** Reads logits, then poisons them with NaN so the next step must overwrite every row it returns. */
async function readPoisoned(logits: Tensor<'f32'>): Promise<Float32Array> {
  const values = await logits.read();
  logits.write(new Float32Array(logits.numel).fill(NaN));
  return values;
}

function expectClose(actual: Float32Array, expected: Float64Array[], tol: number, what: string): void {
  const V = expected[0].length;
  expect(actual.length, what).toBe(expected.length * V);
  let worst = 0;
  let where = '';
  expected.forEach((row, r) => {
    let maxRef = 0;
    let maxErr = 0;
    for (let i = 0; i < V; i++) {
      maxRef = Math.max(maxRef, Math.abs(row[i]));
      const a = actual[r * V + i];
      maxErr = Math.max(maxErr, Number.isFinite(a) ? Math.abs(a - row[i]) : Infinity);
    }
    const rel = maxErr / maxRef;
    if (!(rel <= worst)) {
      worst = rel;
      where = `row ${r}`;
    }
  });
  expect(worst, `${what}: max |Δ| / max |ref| = ${worst.toExponential(2)} at ${where}`).toBeLessThanOrEqual(tol);
}

/** Hands out blocks of a pool in a shuffled order, so sequences hold scattered, interleaved blocks. */
class BlockTables {
  readonly #free: number[];
  readonly #tables = new Map<number, number[]>();
  readonly #blockSize = 8;

  constructor(numBlocks: number, rng: Lcg) {
    this.#free = Array.from({ length: numBlocks }, (_, i) => i);
    for (let i = numBlocks - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [this.#free[i], this.#free[j]] = [this.#free[j], this.#free[i]];
    }
  }

  /** Sequence `s`'s table, grown to hold `tokens` tokens. */
  grow(s: number, tokens: number): number[] {
    const table = this.#tables.get(s) ?? [];
    while (table.length * this.#blockSize < tokens) {
      const b = this.#free.pop();
      if (b === undefined) throw new Error('test pool exhausted');
      table.push(b);
    }
    this.#tables.set(s, table);
    return [...table];
  }
}

class Lcg {
  #x: number;
  constructor(seed: number) {
    this.#x = seed >>> 0 || 1;
  }
  int(n: number): number {
    this.#x = (Math.imul(this.#x, 1664525) + 1013904223) >>> 0;
    return Math.floor((this.#x / 4294967296) * n);
  }
  tokens(n: number, vocab: number): number[] {
    return Array.from({ length: n }, () => this.int(vocab));
  }
}

describe('forward rejects batches it cannot run, before queuing anything', () => {
  let device: Device;
  let model: CausalLM;
  let kv: KvCachePool;
  beforeAll(async () => {
    device = Device.open('cpu', { threads: 1 });
    const { dir } = randomCheckpoint({ dir: path.join(root, 'validation'), vocabSize: 50, maxPositionEmbeddings: 40 });
    model = await CausalLM.load(dir, device, { maxBatchTokens: 16, maxSeqs: 2 });
    kv = model.createKvCache({ maxTokens: 64, blockSize: 8, dtype: 'f32' });
  });
  afterAll(() => {
    kv.dispose();
    model.dispose();
    device.dispose();
  });

  it('names the problem', () => {
    const seq = (o: Partial<SequenceChunk> = {}): SequenceChunk => ({ tokens: [1, 2, 3], numCached: 0, blockTable: [0], ...o });
    const cases: [SequenceChunk[], string][] = [
      [[], '0 sequences; this model was set up for 1 to 2'],
      [[seq(), seq(), seq()], '3 sequences'],
      [[seq({ tokens: Array(17).fill(1), blockTable: [0, 1, 2] })], '17 new tokens; this model was set up for at most 16'],
      [[seq({ tokens: [] })], 'at least one new token'],
      [[seq({ numCached: 6 })], 'sequence 0: 9 tokens need 2 blocks of 8; its block table has 1'],
      [[seq({ blockTable: [8] })], 'block table entry 0 = 8 is outside the pool of 8 blocks'],
      [[seq({ tokens: [1, 50] })], 'token 50 is outside the vocabulary of 50'],
      [[seq({ numCached: -1 })], 'numCached must be a non-negative integer'],
      [[seq({ numCached: 38, blockTable: [0, 1, 2, 3, 4, 5] })], '41 tokens exceed max_position_embeddings (40)'],
    ];
    for (const [batch, message] of cases) expect(() => model.forward(batch, kv), message).toThrow(message);
    const other = new KvCachePool(device, { ...model.kvShape, numKvHeads: 1 }, { numBlocks: 2 });
    expect(() => model.forward([seq()], other)).toThrow('the KV cache holds 2 layers × 1 heads × 16; the model needs 2 × 2 × 16');
    other.dispose();
  });

  it('sizes KV pools by blocks, tokens or bytes', () => {
    const shape = model.kvShape;
    const perBlock = KvCachePool.bytesPerBlock(shape, 16, 'bf16');
    expect(perBlock).toBe(2 * shape.numLayers * 16 * shape.numKvHeads * shape.headDim * 2);
    const byTokens = new KvCachePool(device, shape, { maxTokens: 33 });
    expect([byTokens.numBlocks, byTokens.maxTokens, byTokens.bytes]).toEqual([3, 48, 3 * perBlock]);
    const byBytes = new KvCachePool(device, shape, { maxBytes: 5 * perBlock - 1 });
    expect(byBytes.numBlocks).toBe(4);
    expect(() => new KvCachePool(device, shape, { maxBytes: perBlock - 1 })).toThrow('it needs at least one');
    expect(() => new KvCachePool(device, shape, { numBlocks: 2, maxTokens: 4 })).toThrow('exactly one of');
    byTokens.dispose();
    byBytes.dispose();
  });
});
