// Positions beyond 32K on a YaRN-configured dense checkpoint (Qwen3's model card: factor 4 over
// 32,768): the whole forward pass at positions ~40,000 against the float64 reference, on cpu and
// cuda-sim, with a KV cache of a few blocks. The sequence's first P = 40,000 positions all map to one
// cache block holding zeros (K = V = 0: each such key scores 0 and adds nothing but its weight to the
// softmax), which the reference models exactly (ReferenceQwen3 zeroPrefix). The q/k norm weights are
// scaled up so the real keys' scores dominate those P zero keys and the RoPE angles at these
// positions (and YaRN's attention factor) decide the logits.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { KvCachePool } from '../../src/kv/pool.js';
import { CausalLM } from '../../src/model/step.js';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import { assertClose } from '../reference/compare.js';
import { ReferenceQwen3 } from './reference.js';

const PREFIX = 40_000; // a multiple of the block size: the new tokens start a fresh block
const BLOCK = 16;
const QK_NORM_SCALE = 5;

/** Multiplies the f32 q_norm / k_norm weights of a single-file checkpoint in place. */
function scaleQkNorms(file: string, factor: number): void {
  const buf = readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: number[] }>;
  for (const [name, e] of Object.entries(header)) {
    if (!/self_attn\.[qk]_norm\.weight$/.test(name)) continue;
    if (e.dtype !== 'F32') throw new Error(`${name}: expected F32`);
    for (let at = 8 + headerLength + e.data_offsets[0]; at < 8 + headerLength + e.data_offsets[1]; at += 4)
      buf.writeFloatLE(buf.readFloatLE(at) * factor, at);
  }
  writeFileSync(file, buf);
}

const root = mkdtempSync(path.join(tmpdir(), 'paralon-long-'));
const dir = path.join(root, 'yarn');
beforeAll(() => {
  randomCheckpoint({
    dir, seed: 4242, hiddenSize: 56, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 70, vocabSize: 83, numLayers: 2, dtype: 'f32',
    ropeScaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 32_768 },
  });
  scaleQkNorms(path.join(dir, 'model.safetensors'), QK_NORM_SCALE);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cuda = Device.cudaStatus();
const devices = [
  { name: 'cpu', skip: false as string | false },
  { name: 'cuda-sim', skip: false as string | false },
  { name: 'cuda:0', skip: cuda.count > 0 ? (false as const) : `no CUDA device: ${cuda.reason}` },
];

for (const d of devices) {
  describe.skipIf(d.skip)(`YaRN beyond 32K on ${d.name}${d.skip ? ` (skipped: ${d.skip})` : ''}`, () => {
    let device: Device;
    let model: CausalLM;
    beforeAll(async () => {
      device = Device.open(d.name as 'cpu', { threads: 2 });
      model = await CausalLM.load(dir, device, { maxBatchTokens: 16, maxSeqs: 2 });
    });
    afterAll(() => {
      model?.dispose();
      device?.dispose();
    });

    it(`prefills 6 tokens at positions ${PREFIX}… and decodes 3 more, as the float64 reference`, async () => {
      expect(model.config.maxPositionEmbeddings).toBe(131_072);
      const kv = new KvCachePool(device, model.kvShape, { blockSize: BLOCK, numBlocks: 2, dtype: 'f32' });
      for (const layer of kv.layers) for (const t of [layer.k, layer.v]) t.write(new Float32Array(t.numel));
      // Block 0 (zeros) stands for every prefix block; block 1 takes the new tokens.
      const table = [...new Array<number>(PREFIX / BLOCK).fill(0), 1];
      const tokens = [5, 17, 42, 3, 66, 29, 11, 70, 8];
      const ref = ReferenceQwen3.load(dir).logits(tokens, { zeroPrefix: PREFIX });
      const V = model.config.vocabSize;
      const flat = (rows: Float64Array[]) => Float64Array.from(rows.flatMap((r) => [...r]));

      const prefill = model.forward([{ tokens: tokens.slice(0, 6), numCached: PREFIX, blockTable: table }], kv, { allLogits: true });
      assertClose(await prefill.read(), flat(ref.slice(0, 6)), 1e-4, 'prefill');
      prefill.dispose();
      for (let t = 6; t < tokens.length; t++) {
        const logits = model.forward([{ tokens: [tokens[t]], numCached: PREFIX + t, blockTable: table }], kv);
        assertClose((await logits.read()).subarray(0, V), ref[t], 1e-4, `decode at position ${PREFIX + t}`);
      }
      kv.dispose();
    });
  });
}
