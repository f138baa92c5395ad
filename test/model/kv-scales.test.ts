// fp8 KV cache scales from a checkpoint (src/model/kv-scales.ts): per-layer k_scale/v_scale or one
// kv_scale, used by an fp8 pool the model creates (explicit scales win, other dtypes ignore them), and
// refused by file and tensor when partial or not a positive float scalar. The forward pass with such
// scales is checked against the float64 reference in forward.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { CausalLM } from '../../src/model/step.js';
import { readKvScales } from '../../src/model/kv-scales.js';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import type { Checkpoint, TensorEntry } from '../../src/model/weights.js';

const root = mkdtempSync(path.join(tmpdir(), 'paralon-kv-scales-'));
let device: Device;
beforeAll(() => {
  device = Device.open('cpu', { threads: 1 });
});
afterAll(() => {
  device?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** An in-memory checkpoint of scalar-ish tensors: name → [dtype, shape, values]. */
function fakeCheckpoint(tensors: Record<string, ['f32' | 'bf16' | 'i32', number[], number[]]>): Checkpoint {
  const entry = (name: string): TensorEntry | undefined => {
    const t = tensors[name];
    return t && { name, file: 'fake.safetensors', dtype: t[0] as 'f32', shape: t[1], byteOffset: 0, byteLength: 4 };
  };
  return {
    files: ['fake.safetensors'],
    names: Object.keys(tensors),
    get: entry,
    tensor: (e) => device.tensor(tensors[e.name][2], e.shape.length ? e.shape : [1], e.dtype as 'f32' | 'bf16'),
  };
}

describe('fp8 KV scales from the checkpoint', () => {
  it('are read per layer and given to an fp8 pool the model creates; explicit scales win; other dtypes have none', async () => {
    const kvScales = [{ k: 0.05, v: 3 }, { k: 1.75, v: 0.0125 }, { k: 2, v: 0.5 }];
    const { dir } = randomCheckpoint({ dir: path.join(root, 'scaled'), numLayers: 3, dtype: 'f32', kvScales });
    const model = await CausalLM.load(dir, device, { maxBatchTokens: 8, maxSeqs: 1 });
    try {
      expect(model.weights.kvScales).toEqual(kvScales.map((s) => ({ k: Math.fround(s.k), v: Math.fround(s.v) })));
      const fp8 = model.createKvCache({ numBlocks: 2, dtype: 'fp8' });
      expect(fp8.layers.map((l) => [...l.scales!])).toEqual(kvScales.map((s) => [Math.fround(s.k), Math.fround(s.v)]));
      const explicit = model.createKvCache({ numBlocks: 2, dtype: 'fp8', fp8Scales: { k: 4, v: 8 } });
      expect(explicit.layers.map((l) => [...l.scales!])).toEqual([[4, 8], [4, 8], [4, 8]]);
      const bf16 = model.createKvCache({ numBlocks: 2, dtype: 'bf16' });
      expect(bf16.layers.every((l) => l.scales === undefined)).toBe(true);
      for (const pool of [fp8, explicit, bf16]) pool.dispose();
      expect(() => model.createKvCache({ numBlocks: 2, dtype: 'fp8', fp8Scales: [{ k: 1, v: 1 }] })).toThrow('fp8Scales has 1 layers, the model 3');
      expect(() => model.createKvCache({ numBlocks: 2, dtype: 'fp8', fp8Scales: [{ k: 1, v: 1 }, { k: 1, v: 0 }, { k: 1, v: 1 }] })).toThrow(
        'fp8Scales must be positive finite numbers (got 0)',
      );
    } finally {
      model.dispose();
    }
    const plain = await CausalLM.load(randomCheckpoint({ dir: path.join(root, 'plain'), numLayers: 2, dtype: 'f32' }).dir, device, { maxBatchTokens: 8, maxSeqs: 1 });
    expect(plain.weights.kvScales).toBeUndefined();
    const pool = plain.createKvCache({ numBlocks: 2, dtype: 'fp8' });
    expect(pool.layers.every((l) => l.scales === undefined)).toBe(true); // the kernels' default, 1 and 1
    pool.dispose();
    plain.dispose();
  });

  it("take one kv_scale for both K and V (older exports), [1]-shaped scalars and bf16", async () => {
    const cp = fakeCheckpoint({
      'model.layers.0.self_attn.kv_scale': ['f32', [], [0.5]],
      'model.layers.1.self_attn.k_scale': ['bf16', [1], [0.25]],
      'model.layers.1.self_attn.v_scale': ['f32', [], [6]],
    });
    expect(await readKvScales(cp, 2)).toEqual([{ k: 0.5, v: 0.5 }, { k: 0.25, v: 6 }]);
    expect(await readKvScales(fakeCheckpoint({}), 2)).toBeUndefined();
  });

  it('refuse partial or malformed scales, naming the file and tensor', async () => {
    const cases: [Parameters<typeof fakeCheckpoint>[0], string][] = [
      [{ 'model.layers.0.self_attn.k_scale': ['f32', [], [1]], 'model.layers.0.self_attn.v_scale': ['f32', [], [1]] },
        'fake.safetensors: missing tensor model.layers.1.self_attn.k_scale (other layers have fp8 KV scales)'],
      [{ 'model.layers.0.self_attn.kv_scale': ['f32', [], [1]], 'model.layers.1.self_attn.k_scale': ['f32', [], [1]] },
        'missing tensor model.layers.1.self_attn.v_scale'],
      [{ 'model.layers.0.self_attn.kv_scale': ['f32', [2], [1, 1]], 'model.layers.1.self_attn.kv_scale': ['f32', [], [1]] },
        'fake.safetensors: model.layers.0.self_attn.kv_scale: shape [2], expected a scalar'],
      [{ 'model.layers.0.self_attn.kv_scale': ['i32', [], [1]], 'model.layers.1.self_attn.kv_scale': ['f32', [], [1]] },
        'model.layers.0.self_attn.kv_scale: dtype i32, expected a float scalar'],
      [{ 'model.layers.0.self_attn.kv_scale': ['f32', [], [1]], 'model.layers.1.self_attn.kv_scale': ['f32', [], [-2]] },
        'model.layers.1.self_attn.kv_scale: -2 is not a positive finite scale'],
      [{ 'model.layers.0.self_attn.kv_scale': ['f32', [], [NaN]], 'model.layers.1.self_attn.kv_scale': ['f32', [], [1]] },
        'model.layers.0.self_attn.kv_scale: NaN is not a positive finite scale'],
    ];
    for (const [tensors, message] of cases) await expect(readKvScales(fakeCheckpoint(tensors), 2), message).rejects.toThrow(message);
  });
});
