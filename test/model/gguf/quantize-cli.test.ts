// `paralon quantize DIR OUT.gguf --type Q8_0|Q6_K|Q4_K_M|Q5_K_M`: an HF Qwen3 directory becomes a GGUF
// of that llama.cpp file type (progress on stderr) that loads and generates; each tensor's type follows
// llama-quantize's recipe (quant-recipe.ts, checked here against the layer pattern of Qwen3-0.6B).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../../src/index.js';
import { readGgufHeader, tensorType } from '../../../src/model/gguf/index.js';
import { checkpointWithTokenizer } from './tiny-model.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const root = mkdtempSync(path.join(tmpdir(), 'paralon-quantize-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const paralon = (args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: repo, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('paralon quantize', () => {
  // Q6_K blocks hold 256 values: every matrix input (hidden, q width, intermediate) is a multiple of 256.
  const dir = checkpointWithTokenizer(path.join(root, 'ckpt'), { hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 256, vocabSize: 100, numLayers: 1, dtype: 'bf16', tieWordEmbeddings: false, seed: 21 });

  for (const [type, ggml] of [['Q8_0', 'Q8_0'], ['q6_k', 'Q6_K']] as const) {
    it(`writes ${type} with progress, and the file loads and generates`, async () => {
      const out = path.join(root, `Tiny-${ggml}.gguf`);
      const r = paralon(['quantize', dir, out, '--type', type]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[14\/14\] output\.weight/);
      expect(r.stdout).toMatch(new RegExp(`Wrote .*Tiny-${ggml}\\.gguf: ${ggml.toUpperCase()}, 14 tensors \\(`));
      const types = new Set(readGgufHeader(out).tensors.filter((t) => t.shape.length === 2).map((t) => t.type));
      expect([...types]).toEqual([ggml]);
      const m = await loadModel(out, { device: 'cpu', threads: 1, kvCacheMemory: 1 << 20 });
      expect([m.id, m.kvCacheDType]).toEqual(['tiny', 'bf16']);
      let n = 0;
      for await (const ev of m.complete('th', { temperature: 0, maxTokens: 3 })) if (ev.type === 'delta') n += ev.tokenIds.length;
      expect(n).toBeGreaterThan(0);
      m.dispose();
    });
  }

  it('writes Q4_K_M and Q5_K_M as llama-quantize mixes them, and the files load and generate', async () => {
    // 3 layers: use_more_bits picks layer 2 only (n/8 = 0, 7n/8 = 2).
    const mixDir = checkpointWithTokenizer(path.join(root, 'ckpt3'), { hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 256, vocabSize: 100, numLayers: 3, dtype: 'bf16', tieWordEmbeddings: true, seed: 22 });
    for (const [type, base, fileType] of [['Q4_K_M', 'Q4_K', 15], ['q5_k_m', 'Q5_K', 17]] as const) {
      const out = path.join(root, `Tiny3-${base}.gguf`);
      const r = paralon(['quantize', mixDir, out, '--type', type]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[35\/35\] output_norm\.weight/);
      const header = readGgufHeader(out);
      expect((header.metadata.get('general.file_type') as { value: number }).value).toBe(fileType);
      const types = Object.fromEntries(header.tensors.filter((t) => t.shape.length === 2).map((t) => [t.name, t.type]));
      const q6 = Object.keys(types).filter((n) => types[n] === 'Q6_K').sort();
      // Tied LM head: token_embd takes output's Q6_K.
      expect(q6).toEqual(['blk.2.attn_v.weight', 'blk.2.ffn_down.weight', 'token_embd.weight']);
      expect(Object.values(types).filter((t) => t !== 'Q6_K').every((t) => t === base)).toBe(true);
      const m = await loadModel(out, { device: 'cpu', threads: 1, kvCacheMemory: 1 << 20 });
      let n = 0;
      for await (const ev of m.complete('th', { temperature: 0, maxTokens: 3 })) if (ev.type === 'delta') n += ev.tokenIds.length;
      expect(n).toBeGreaterThan(0);
      m.dispose();
    }
  });

  it('refuses types it does not write, naming the ones it does', () => {
    const r = paralon(['quantize', dir, path.join(root, 'x.gguf'), '--type', 'Q4_0']);
    expect(r.code).toBe(2); // bad usage
    expect(r.stderr).toMatch(/usage: paralon quantize DIR OUT\.gguf --type F32\|F16\|BF16\|Q8_0\|Q4_K_M\|Q5_K_M\|Q6_K/);
  });
});

describe('the Q4_K_M / Q5_K_M recipe (llama_tensor_get_type without an imatrix)', () => {
  it("gives Qwen3-0.6B's 28 layers Q6_K attn_v and ffn_down at layers 0-2, 5, 8, ..., 23 and 24-27", () => {
    const more = [...Array(28).keys()].filter((i) => tensorType('Q4_K_M', `blk.${i}.ffn_down.weight`, [1024, 3072], 28, true).type === 'Q6_K');
    expect(more).toEqual([0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
    const v = [...Array(28).keys()].filter((i) => tensorType('Q5_K_M', `blk.${i}.attn_v.weight`, [1024, 1024], 28, true).type === 'Q6_K');
    expect(v).toEqual(more);
    expect(tensorType('Q4_K_M', 'blk.0.attn_q.weight', [2048, 1024], 28, true).type).toBe('Q4_K');
    expect(tensorType('Q4_K_M', 'blk.0.ffn_gate.weight', [3072, 1024], 28, true).type).toBe('Q4_K');
    expect(tensorType('Q4_K_M', 'blk.0.attn_norm.weight', [1024], 28, true).type).toBe('F32');
  });

  it('gives the LM head Q6_K (Q8_0 in Q8_0 files), and token_embd the base type unless it is the tied head', () => {
    expect(tensorType('Q4_K_M', 'output.weight', [151936, 4096], 36, false).type).toBe('Q6_K');
    expect(tensorType('Q4_K_M', 'token_embd.weight', [151936, 4096], 36, false).type).toBe('Q4_K');
    expect(tensorType('Q6_K', 'token_embd.weight', [151936, 4096], 36, true).type).toBe('Q6_K');
    expect(tensorType('Q8_0', 'output.weight', [151936, 4096], 36, false).type).toBe('Q8_0');
    expect(tensorType('BF16', 'output.weight', [151936, 4096], 36, false).type).toBe('BF16');
  });

  it('falls back when rows do not divide into blocks: Q6_K to Q8_0, Q4_K/Q5_K to Q8_0 (llama.cpp: Q5_0/Q5_1), then F16', () => {
    expect(tensorType('Q4_K_M', 'output.weight', [100, 96], 1, false)).toEqual({ type: 'Q8_0' });
    expect(tensorType('Q5_K_M', 'blk.0.ffn_down.weight', [96, 96], 1, false)).toMatchObject({ type: 'Q8_0', fallback: expect.stringMatching(/Q6_K blocks/) });
    expect(tensorType('Q4_K_M', 'blk.0.attn_q.weight', [96, 96], 9, false)).toMatchObject({ type: 'Q8_0', fallback: expect.stringMatching(/llama\.cpp writes Q5_0/) });
    expect(tensorType('Q5_K_M', 'blk.0.attn_q.weight', [96, 96], 9, false)).toMatchObject({ type: 'Q8_0', fallback: expect.stringMatching(/Q5_1/) });
    expect(tensorType('Q4_K_M', 'blk.0.attn_q.weight', [40, 40], 9, false)).toMatchObject({ type: 'F16' });
    expect(tensorType('Q8_0', 'blk.0.attn_q.weight', [40, 40], 9, false)).toMatchObject({ type: 'F16', fallback: expect.stringMatching(/refuses/) });
  });
});
