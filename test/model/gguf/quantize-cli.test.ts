// `paralon quantize DIR OUT.gguf --type Q8_0|Q6_K`: an HF Qwen3 directory becomes a GGUF of that block
// type (progress on stderr) that loads and generates; the mixed types are refused by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../../src/index.js';
import { readGgufHeader } from '../../../src/model/gguf/index.js';
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
      expect(r.stdout).toMatch(new RegExp(`Wrote .*Tiny-${ggml}\\.gguf: ${ggml}, 14 tensors`));
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

  it('refuses types it does not write, naming them', () => {
    const r = paralon(['quantize', dir, path.join(root, 'x.gguf'), '--type', 'Q4_K_M']);
    expect(r.code).toBe(2); // bad usage
    expect(r.stderr).toMatch(/usage: paralon quantize DIR OUT\.gguf --type Q8_0\|Q6_K\|F32\|F16\|BF16 \(Q4_K_M, a mix of block types, is not implemented yet\)/);
  });
});
