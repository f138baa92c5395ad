// The demo model: Hugging Face layout, Qwen3's tokenizer files and vocabulary, deterministic bytes,
// and a forward pass that agrees with the float64 reference on the CPU.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { readGenerationDefaults } from '../../src/model/config.js';
import { readModelConfig } from '../../src/model/registry.js';
import { writeDemoModel } from '../../src/model/demo.js';
import { CausalLM } from '../../src/model/step.js';
import { ReferenceQwen3 } from './reference.js';

describe('demo model', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-demo-'));
  let device: Device;
  beforeAll(() => {
    writeDemoModel(dir);
    device = Device.open('cpu', { threads: 2 });
  });
  afterAll(() => {
    device.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a Qwen3 checkpoint in the Hugging Face layout with the real tokenizer', () => {
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'README.md'])
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    const { config } = readModelConfig(dir);
    expect(config).toMatchObject({ vocabSize: 151_936, hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 4, headDim: 64, dtype: 'bf16', tieWordEmbeddings: true });
    expect(readGenerationDefaults(dir, config)).toEqual({ eosTokenIds: [151_645, 151_643], bosTokenId: 151_643, temperature: 0.6, topK: 20, topP: 0.95 });
    const tokenizer = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(tokenizer.added_tokens.find((t: { id: number }) => t.id === 151_645).content).toBe('<|im_end|>');
    expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toContain('random weights');
  });

  it('writes the same bytes every time', () => {
    const again = mkdtempSync(path.join(tmpdir(), 'paralon-demo-'));
    try {
      writeDemoModel(again);
      expect(readFileSync(path.join(again, 'model.safetensors')).equals(readFileSync(path.join(dir, 'model.safetensors')))).toBe(true);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  it('runs a prompt and two decodes in agreement with the float64 reference (bf16 weights widened exactly: 1e-4)', async () => {
    const model = await CausalLM.load(dir, device, { maxBatchTokens: 16, maxSeqs: 1 });
    const kv = model.createKvCache({ maxTokens: 32, dtype: 'f32' });
    const blockTable = [1, 0];
    const tokens = [151_644, 872, 198, 9707, 11, 1879, 0, 151_645, 99_999];
    const expected = new ReferenceQwen3Rows(dir, tokens);
    const check = async (logits: Float32Array, row: Float64Array) => {
      let err = 0;
      let max = 0;
      row.forEach((r, i) => {
        err = Math.max(err, Number.isFinite(logits[i]) ? Math.abs(logits[i] - r) : Infinity);
        max = Math.max(max, Math.abs(r));
      });
      expect(err / max).toBeLessThanOrEqual(1e-4);
    };
    await check(await model.forward([{ tokens: tokens.slice(0, 7), numCached: 0, blockTable }], kv).read(), expected.rows[6]);
    for (let t = 7; t < 9; t++)
      await check(await model.forward([{ tokens: [tokens[t]], numCached: t, blockTable }], kv).read(), expected.rows[t]);
    kv.dispose();
    model.dispose();
  });
});

/** Reference logits of every position, computed once. */
class ReferenceQwen3Rows {
  readonly rows: Float64Array[];
  constructor(dir: string, tokens: number[]) {
    this.rows = ReferenceQwen3.load(dir).logits(tokens);
  }
}
