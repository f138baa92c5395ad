// Host-to-device metadata copies per eager decode step on CUDA devices (Device.metadataUploads): the
// runner hands the step's int32 metadata to the device up front (Device.stageStep) and the device
// uploads it in one packed copy that every op of the step then reads (token ids, positions, slots,
// q starts, kv lengths, block tables, last rows), RoPE's inv_freq stays on the device from its first
// use, and a step where every sequence decodes needs no decode list — one copy per step. Without the
// packed upload the same ops make one copy per distinct array (7). A replayed graph uploads its inputs
// in one copy too. The logits of each step match the CPU's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { KvCachePool } from '../../src/kv/pool.js';
import { CausalLM, type SequenceChunk } from '../../src/model/step.js';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import { assertClose } from '../reference/compare.js';
import { Rng } from '../reference/random.js';

const cuda = Device.cudaStatus();
const devices = [
  { name: 'cuda-sim', skip: false as string | false },
  { name: 'cuda:0', skip: cuda.count > 0 ? (false as const) : `no CUDA device: ${cuda.reason}` },
];

const root = mkdtempSync(path.join(tmpdir(), 'paralon-uploads-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

for (const d of devices) {
  describe.skipIf(d.skip)(`metadata uploads per decode step on ${d.name}${d.skip ? ` (skipped: ${d.skip})` : ''}`, () => {
    let device: Device;
    let cpu: Device;
    let models: { eager: CausalLM; graphed: CausalLM; ref: CausalLM };
    beforeAll(async () => {
      device = Device.open(d.name as 'cuda-sim');
      cpu = Device.open('cpu');
      const dir = path.join(root, d.name);
      randomCheckpoint({ dir, seed: 5, hiddenSize: 72, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 100, vocabSize: 97, numLayers: 2, dtype: 'bf16' });
      const opts = { maxBatchTokens: 64, maxSeqs: 4 };
      models = {
        eager: await CausalLM.load(dir, device, { ...opts, graphs: false }),
        graphed: await CausalLM.load(dir, device, opts),
        ref: await CausalLM.load(dir, cpu, { ...opts, graphs: false }),
      };
    });
    afterAll(() => {
      for (const m of Object.values(models ?? {})) m.dispose();
      device?.dispose();
      cpu?.dispose();
    });

    it('one packed copy per eager step (7 without it), one per graph replay; logits as on the CPU', async () => {
      const rng = new Rng(`uploads ${d.name}`);
      const V = models.eager.config.vocabSize;
      const lengths = [5, 12, 3];
      const streams = lengths.map((n) => Array.from({ length: n + 6 }, () => rng.int(0, V)));
      const tables = lengths.map((_, s) => Array.from({ length: 4 }, (_, j) => s * 4 + j));
      const chunk = (s: number, from: number, to: number): SequenceChunk => ({ tokens: streams[s].slice(from, to), numCached: from, blockTable: tables[s] });
      const pools = Object.values(models).map((m) => new KvCachePool(m.device, m.kvShape, { blockSize: 8, numBlocks: 12, dtype: 'bf16' }));
      const [eager, graphed, ref] = Object.values(models);
      for (const [i, m] of [eager, graphed, ref].entries()) await m.forward(lengths.map((n, s) => chunk(s, 0, n)), pools[i]).read();
      const pos = [...lengths];
      const counts: { eager: number[]; unpacked: number[]; graphed: number[] } = { eager: [], unpacked: [], graphed: [] };
      const uploadsOf = async (run: () => Promise<unknown>) => {
        await device.synchronize();
        const before = device.metadataUploads;
        await run();
        await device.synchronize();
        return device.metadataUploads - before;
      };
      for (const [k, seqs] of [[0, 1, 2], [0, 1, 2], [2, 0], [1], [0, 1, 2]].entries()) {
        const batch = seqs.map((s) => chunk(s, pos[s], pos[s] + 1));
        for (const s of seqs) pos[s]++;
        let got: Float32Array = new Float32Array();
        counts.eager.push(await uploadsOf(async () => (got = await eager.forward(batch, pools[0]).read())));
        counts.graphed.push(await uploadsOf(() => graphed.forward(batch, pools[1]).read()));
        const want = await ref.forward(batch, pools[2]).read();
        // The prompt's tensor-core prefill rounds activations to bf16 (as in forward.test.ts).
        assertClose(got, want, 2e-2, `eager decode step ${k} vs cpu`);
      }
      // The same eager step without the packed upload: the ops stage their arrays one by one.
      const stageStep = device.stageStep;
      device.stageStep = () => {};
      try {
        const seqs = [0, 1, 2];
        const batch = seqs.map((s) => chunk(s, pos[s], pos[s] + 1));
        counts.unpacked.push(await uploadsOf(() => eager.forward(batch, pools[0]).read()));
      } finally {
        device.stageStep = stageStep;
      }
      expect(counts.eager).toEqual([1, 1, 1, 1, 1]);
      expect(counts.graphed).toEqual([1, 1, 1, 1, 1]);
      expect(counts.unpacked).toEqual([7]);
      for (const p of pools) p.dispose();
    });
  });
}
