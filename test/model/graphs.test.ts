// Decode steps replayed as graphs (CUDA graphs; recorded op lists on the CPU) compute what eager
// decodes compute: batches padded to their bucket (on the CPU, a graph per batch size instead), block
// tables that outgrow a graph's width, sequences joining and leaving, and a new KV pool (graphs are recorded per pool) — for dense Qwen3 and for Qwen3-MoE (routing and expert
// matmuls captured with the rest of the step).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { KvCachePool } from '../../src/kv/pool.js';
import { CausalLM, type SequenceChunk } from '../../src/model/step.js';
import { bucket } from '../../src/model/decode-graphs.js';
import { randomCheckpoint, type RandomCheckpointOptions } from '../../src/model/random-checkpoint.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { Rng } from '../reference/random.js';

const cuda = Device.cudaStatus();
const devices = [
  { name: 'cpu', skip: false as string | false },
  { name: 'cuda-sim', skip: false as string | false },
  { name: 'cuda:0', skip: cuda.count > 0 ? (false as const) : `no CUDA device: ${cuda.reason}` },
];

const root = mkdtempSync(path.join(tmpdir(), 'paralon-graphs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('decode graph buckets', () => {
  it('are powers of two up to 8, then multiples of 8, capped by the model\'s batch', () => {
    expect([1, 2, 3, 5, 8, 9, 17, 24, 25, 64].map((n) => bucket(n, 64))).toEqual([1, 2, 4, 8, 8, 16, 24, 24, 32, 64]);
    expect(bucket(5, 6)).toBe(6);
  });
});

const shape: Omit<RandomCheckpointOptions, 'dir'> = { hiddenSize: 72, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 100, vocabSize: 97, numLayers: 2, dtype: 'bf16' };
const models: { name: string; checkpoint: Omit<RandomCheckpointOptions, 'dir'> }[] = [
  { name: 'Qwen3', checkpoint: shape },
  { name: 'Qwen3-MoE', checkpoint: { ...shape, moe: { numExperts: 5, numExpertsPerTok: 2, moeIntermediateSize: 36, normTopkProb: true } } },
];

for (const d of devices) for (const model of models) {
  describe.skipIf(d.skip)(`decode graphs of ${model.name} on ${d.name}${d.skip ? ` (skipped: ${d.skip})` : ''}`, () => {
    let device: Device;
    let graphed: CausalLM;
    let eager: CausalLM;
    beforeAll(async () => {
      device = Device.open(d.name as 'cuda-sim');
      const dir = path.join(root, `${d.name}-${model.name}`);
      randomCheckpoint({ dir, seed: 77, ...model.checkpoint });
      graphed = await CausalLM.load(dir, device, { maxBatchTokens: 64, maxSeqs: 6 });
      eager = await CausalLM.load(dir, device, { maxBatchTokens: 64, maxSeqs: 6, graphs: false });
    });
    afterAll(() => {
      graphed?.dispose();
      eager?.dispose();
      device?.dispose();
    });

    it('match eager decodes step by step, padded batches and growing block tables included', async () => {
      const rng = new Rng(`graphs ${d.name} ${model.name}`);
      const V = graphed.config.vocabSize;
      const pools = [graphed, eager].map((m) => new KvCachePool(device, m.kvShape, { blockSize: 8, numBlocks: 40, dtype: 'bf16' }));
      const lengths = [3, 11, 6, 1, 9];
      const streams = lengths.map((n) => Array.from({ length: n + 12 }, () => rng.int(0, V)));
      const tables = lengths.map((_, s) => Array.from({ length: 8 }, (_, j) => s * 8 + j));
      const chunk = (s: number, from: number, to: number): SequenceChunk => ({ tokens: streams[s].slice(from, to), numCached: from, blockTable: tables[s] });
      // Prompts, eagerly on both models.
      for (const [m, i] of [[graphed, 0], [eager, 1]] as const) m.forward(lengths.map((n, s) => chunk(s, 0, n)), pools[i]);
      // Decode steps over changing sets of sequences: 5 → bucket 8, 3 → 4, 1 → 1, and contexts
      // that cross from 2 to 3 blocks (a wider graph).
      const pos = [...lengths];
      const plan = [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [4, 2, 0], [1], [0, 1, 2, 3, 4], [3, 2, 1], [1], [1], [0, 1, 2, 3, 4]];
      for (const [k, seqs] of plan.entries()) {
        const batch = seqs.map((s) => chunk(s, pos[s], pos[s] + 1));
        for (const s of seqs) pos[s]++;
        const got = await graphed.forward(batch, pools[0]).read();
        const want = await eager.forward(batch, pools[1]).read();
        // Attention splits contexts for a graph's widest block table: f32 reassociation only.
        assertClose(got, want, TOLERANCE.f32, `decode step ${k} (sequences ${seqs.join(', ')})`);
      }
      // Batch sizes 5, 3 and 1 at two block-table widths: buckets 8, 4, 1 (exact sizes on the CPU).
      expect(graphed.graphCount).toBeGreaterThanOrEqual(4);
      expect(eager.graphCount).toBe(0);
      // A new pool: the graphs of the old one are dropped, new ones recorded.
      const fresh = pools.map((p, i) => {
        p.dispose();
        return new KvCachePool(device, (i ? eager : graphed).kvShape, { blockSize: 8, numBlocks: 40, dtype: 'bf16' });
      });
      for (const [m, i] of [[graphed, 0], [eager, 1]] as const) m.forward([chunk(2, 0, 5)], fresh[i]);
      const got = await graphed.forward([chunk(2, 5, 6)], fresh[0]).read();
      const want = await eager.forward([chunk(2, 5, 6)], fresh[1]).read();
      assertClose(got, want, TOLERANCE.f32, 'decode on a new pool');
      expect(graphed.graphCount).toBe(1);
      for (const p of fresh) p.dispose();
    });
  });
}
