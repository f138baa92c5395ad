// Loading GGUF models: a random checkpoint written by the project, exported to GGUF (F32 from an f32
// checkpoint, BF16 from a bf16 one; dense `qwen3`, dense with YaRN, and `qwen3moe` with its experts
// stacked in the file), gives the same logits as the safetensors directory on cpu and cuda-sim; the library loads a .gguf file, a directory holding one, and a split set, with the id
// from the file name; and a GGUF missing a tensor or a key fails naming the file and what is missing.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../../src/runtime/index.js';
import { KvCachePool } from '../../../src/kv/pool.js';
import { CausalLM } from '../../../src/model/step.js';
import type { RandomCheckpointOptions } from '../../../src/model/random-checkpoint.js';
import {
  exportQwen3Gguf,
  gguf,
  ggufModelId,
  openGgufModel,
  readGgufHeader,
  writeGguf,
  type GgufTensorToWrite,
  type GgufValue,
} from '../../../src/model/gguf/index.js';
import { loadModel } from '../../../src/index.js';
import { devicesUnderTest } from '../../runtime/devices.js';
import { checkpointWithTokenizer } from './tiny-model.js';

const root = mkdtempSync(path.join(tmpdir(), 'paralon-gguf-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// head_dim 64 (the CUDA attention kernels take 64 or 128); the rest awkward.
const CASES: { name: string; dtype: 'f32' | 'bf16'; options: Omit<RandomCheckpointOptions, 'dir'> }[] = [
  { name: 'f32, untied, GQA 2', dtype: 'f32', options: { hiddenSize: 56, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 84, vocabSize: 103, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false, seed: 3 } },
  { name: 'bf16, tied, GQA 3', dtype: 'bf16', options: { hiddenSize: 40, numHeads: 3, numKvHeads: 1, headDim: 64, intermediateSize: 72, vocabSize: 101, numLayers: 2, dtype: 'bf16', tieWordEmbeddings: true, seed: 4 } },
  {
    name: 'f32, YaRN factor 4 over 64 positions',
    dtype: 'f32',
    options: { hiddenSize: 48, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 60, vocabSize: 102, numLayers: 2, dtype: 'f32', tieWordEmbeddings: true, seed: 5, ropeScaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 64, betaFast: 24 } },
  },
  // f32: the GGUF keeps the router in F32 whatever the matrices' type, so a bf16 checkpoint's router
  // would meet a different kernel on each side.
  {
    name: 'qwen3moe f32, 7 experts, top-3',
    dtype: 'f32',
    options: { hiddenSize: 44, numHeads: 2, numKvHeads: 1, headDim: 64, intermediateSize: 52, vocabSize: 101, numLayers: 2, dtype: 'f32', tieWordEmbeddings: false, seed: 6, moe: { numExperts: 7, numExpertsPerTok: 3, moeIntermediateSize: 36, normTopkProb: true } },
  },
];

for (const dev of devicesUnderTest()) {
  describe.skipIf(dev.skip !== false)(`GGUF vs safetensors logits on ${dev.label}`, () => {
    let device: Device;
    beforeAll(() => {
      device = Device.open(dev.name, { threads: 2 });
    });
    afterAll(() => device?.dispose());

    for (const c of CASES) {
      it(`${c.name}: the same logits for a prefill of 19 tokens and 3 decodes`, async () => {
        const tag = `${dev.name}-${c.options.seed}`;
        const dir = checkpointWithTokenizer(path.join(root, tag), c.options);
        const file = path.join(root, `${tag}.gguf`);
        exportQwen3Gguf(dir, file, { dtype: c.dtype });
        const fromDir = await CausalLM.load(dir, device, { maxBatchTokens: 32, maxSeqs: 2 });
        const gguf = openGgufModel(device, file);
        let fromGguf: CausalLM;
        try {
          fromGguf = await CausalLM.fromCheckpoint(device, gguf.arch, gguf.config, gguf.generation, gguf.checkpoint, { maxBatchTokens: 32, maxSeqs: 2 });
        } finally {
          gguf.checkpoint.close();
        }
        // GGUF stores the norm epsilon as f32 (as the kernels use it).
        expect(fromGguf.config).toEqual({ ...fromDir.config, rmsNormEps: Math.fround(fromDir.config.rmsNormEps), eosTokenIds: [99, 97] });
        const tokens = Array.from({ length: 22 }, (_, i) => (i * 37 + 5) % c.options.vocabSize!);
        const run = async (lm: CausalLM) => {
          const kv = new KvCachePool(device, lm.kvShape, { blockSize: 8, numBlocks: 4, dtype: 'f32' });
          const table = [2, 0, 3];
          const rows: Float32Array[] = [];
          const all = lm.forward([{ tokens: tokens.slice(0, 19), numCached: 0, blockTable: table }], kv, { allLogits: true });
          rows.push(await all.read());
          all.dispose();
          for (let t = 19; t < 22; t++) rows.push(await lm.forward([{ tokens: [tokens[t]], numCached: t, blockTable: table }], kv).read());
          kv.dispose();
          return rows;
        };
        const [a, b] = [await run(fromDir), await run(fromGguf)];
        fromDir.dispose();
        fromGguf.dispose();
        a.forEach((row, i) => {
          let worst = 0;
          for (let j = 0; j < row.length; j++) worst = Math.max(worst, Math.abs(row[j] - b[i][j]));
          expect(worst, `step ${i}`).toBe(0);
        });
      });
    }
  });
}

describe('loadModel with a GGUF', () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = checkpointWithTokenizer(path.join(root, 'library'), { hiddenSize: 24, numHeads: 2, numKvHeads: 1, headDim: 16, intermediateSize: 40, vocabSize: 100, numLayers: 1, dtype: 'bf16', seed: 5 });
    mkdirSync(path.join(root, 'gguf-dir'));
    file = path.join(root, 'gguf-dir', 'Tiny-Qwen3-BF16.gguf');
    exportQwen3Gguf(dir, file, { dtype: 'bf16' });
  });

  it('chats from a .gguf file exactly as from the HF directory, with the id from the file name', async () => {
    const hf = await loadModel(dir, { device: 'cpu', threads: 1, kvCacheMemory: 1 << 20 });
    const gg = await loadModel(file, { device: 'cpu', threads: 1, kvCacheMemory: 1 << 20 });
    try {
      expect(gg.id).toBe('tiny-qwen3');
      const messages = [{ role: 'user' as const, content: 'the thin path' }];
      expect(gg.renderChat(messages)).toBe(hf.renderChat(messages));
      expect(gg.encodeChat(messages)).toEqual(hf.encodeChat(messages));
      const collect = async (m: typeof hf) => {
        const ids: number[] = [];
        for await (const ev of m.chat(messages, { temperature: 0, maxTokens: 8 })) if (ev.type === 'delta') ids.push(...ev.tokenIds);
        return ids;
      };
      expect(await collect(gg)).toEqual(await collect(hf));
    } finally {
      hf.dispose();
      gg.dispose();
    }
  });

  it('loads a directory holding one GGUF, and a split set, to the same logits', async () => {
    const { metadata, tensors } = ggufParts(file);
    const splitDir = path.join(root, 'split');
    mkdirSync(splitDir);
    const half = Math.ceil(tensors.length / 2);
    const splitKeys = (i: number) => [['split.no', gguf.u16(i)], ['split.count', gguf.u16(2)], ['split.tensors.count', gguf.i32(tensors.length)]] as const;
    writeGguf(path.join(splitDir, 'Tiny-Q8_0-00001-of-00002.gguf'), new Map([...metadata, ...splitKeys(0)]), tensors.slice(0, half));
    writeGguf(path.join(splitDir, 'Tiny-Q8_0-00002-of-00002.gguf'), new Map(splitKeys(1)), tensors.slice(half));
    const prompt = 'th th!';
    const options = { device: 'cpu' as const, threads: 1, kvCacheMemory: 1 << 20 };
    const outputs: string[] = [];
    for (const where of [path.join(root, 'gguf-dir'), path.join(splitDir, 'Tiny-Q8_0-00001-of-00002.gguf'), splitDir]) {
      const m = await loadModel(where, options);
      expect(m.id).toBe(where.includes('gguf-dir') ? 'tiny-qwen3' : 'tiny');
      const ids: number[] = [];
      for await (const ev of m.complete(prompt, { temperature: 0, maxTokens: 6 })) if (ev.type === 'delta') ids.push(...ev.tokenIds);
      expect(ids.length).toBeGreaterThan(0);
      outputs.push(ids.join());
      m.dispose();
    }
    expect(new Set(outputs).size).toBe(1);
  });

  it('names the file and the missing tensor or key', async () => {
    const rewrite = (name: string, drop: { tensor?: string; key?: string }) => {
      const out = path.join(root, name);
      const { metadata, tensors } = ggufParts(file);
      writeGguf(out, new Map([...metadata].filter(([k]) => k !== drop.key)), tensors.filter((t) => t.name !== drop.tensor));
      return out;
    };
    const header = readGgufHeader(file);
    const device = Device.open('cpu', { threads: 1 });
    try {
      const noQ = rewrite('no-q.gguf', { tensor: 'blk.0.attn_q.weight' });
      const gguf = openGgufModel(device, noQ);
      await expect(CausalLM.fromCheckpoint(device, gguf.arch, gguf.config, gguf.generation, gguf.checkpoint)).rejects.toThrow(
        /^no-q\.gguf: missing tensor model\.layers\.0\.self_attn\.q_proj\.weight/,
      );
      gguf.checkpoint.close();
      expect(() => openGgufModel(device, rewrite('no-embd.gguf', { tensor: 'token_embd.weight' }))).toThrow(/^no-embd\.gguf: missing tensor token_embd\.weight/);
      expect(() => openGgufModel(device, rewrite('no-heads.gguf', { key: 'qwen3.attention.head_count' }))).toThrow(
        /^no-heads\.gguf: missing metadata key qwen3\.attention\.head_count/,
      );
      expect(() => openGgufModel(device, rewrite('no-arch.gguf', { key: 'general.architecture' }))).toThrow(/^no-arch\.gguf: missing metadata key general\.architecture/);
      const llama = path.join(root, 'llama.gguf');
      writeGguf(llama, new Map([...header.metadata].map(([k, v]) => [k, k === 'general.architecture' ? { kind: 'string', value: 'llama' } : v])), []);
      expect(() => openGgufModel(device, llama)).toThrow(/^llama\.gguf: general\.architecture is "llama"; Paralon runs qwen3/);
    } finally {
      device.dispose();
    }
  });
});

/** A GGUF's metadata and its tensors (data read from the file), to write variants of it. */
function ggufParts(file: string): { metadata: Map<string, GgufValue>; tensors: GgufTensorToWrite[] } {
  const header = readGgufHeader(file);
  const bytes = readFileSync(file);
  return {
    metadata: header.metadata,
    tensors: header.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength) })),
  };
}

describe('GGUF model ids', () => {
  it('drop split and quantization suffixes', () => {
    expect(ggufModelId('/m/Qwen3-8B-Q4_K_M.gguf')).toBe('qwen3-8b');
    expect(ggufModelId('Qwen3-0.6B-Q8_0.gguf')).toBe('qwen3-0.6b');
    expect(ggufModelId('qwen3-32b-q5_k_m-00001-of-00003.gguf')).toBe('qwen3-32b');
    expect(ggufModelId('Qwen3-4B-BF16.gguf')).toBe('qwen3-4b');
    expect(ggufModelId('Qwen3-4B.IQ4_XS.gguf')).toBe('qwen3-4b');
    expect(ggufModelId('model.gguf')).toBe('model');
  });
});
