// Checkpoint loading: config.json / generation_config.json validation, safetensors parsing, sharding,
// and the errors for broken checkpoints — each must name the file and the tensor.
import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { parseGenerationDefaults } from '../../src/model/config.js';
import { parseModelConfig } from '../../src/model/registry.js';
import { CausalLM } from '../../src/model/step.js';
import type { Qwen3Config } from '../../src/model/qwen3.js';
import { hfConfigJson, randomCheckpoint, type RandomCheckpointOptions } from '../../src/model/random-checkpoint.js';
import { SafetensorsCheckpoint } from '../../src/model/safetensors.js';
import { writeSafetensors } from '../../src/model/safetensors-writer.js';

const root = mkdtempSync(path.join(tmpdir(), 'paralon-loader-'));
let device: Device;
let counter = 0;
beforeAll(() => {
  device = Device.open('cpu', { threads: 1 });
});
afterAll(() => {
  device.dispose();
  rmSync(root, { recursive: true, force: true });
});

function checkpoint(options: Omit<RandomCheckpointOptions, 'dir'> = {}) {
  return randomCheckpoint({ dir: path.join(root, `ckpt-${counter++}`), dtype: 'f32', ...options });
}

/** Replaces `from` by `to` (same length) in a file's bytes: edits a safetensors header in place. */
function patch(file: string, from: string, to: string): void {
  expect(to.length).toBe(from.length);
  const bytes = readFileSync(file);
  const at = bytes.indexOf(from);
  expect(at, `${from} in ${file}`).toBeGreaterThanOrEqual(0);
  bytes.write(to, at, 'latin1');
  writeFileSync(file, bytes);
}

function editConfig(dir: string, edit: (json: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const json = JSON.parse(readFileSync(file, 'utf8'));
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

/** config.json parsed through the registry, as a loader does. */
const parseConfig = (json: unknown) => parseModelConfig(json).config as Qwen3Config;

const load = (dir: string) => CausalLM.load(dir, device, { maxBatchTokens: 8, maxSeqs: 2 });

describe('config.json', () => {
  const base = () => hfConfigJson(checkpoint({ numLayers: 1 }).config);

  it('reads a Qwen3 config, head_dim independent of hidden / heads', () => {
    const c = parseConfig({ ...base(), hidden_size: 1024, num_attention_heads: 16, head_dim: 128, eos_token_id: [3, 5] });
    expect(c).toMatchObject({ hiddenSize: 1024, numHeads: 16, headDim: 128, numKvHeads: 2, eosTokenIds: [3, 5], dtype: 'f32' });
  });

  it('rejects other architectures by name', () => {
    expect(() => parseConfig({ ...base(), architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' })).toThrow(
      'config.json: the model is Qwen2ForCausalLM; Paralon runs Qwen3ForCausalLM',
    );
    expect(() => parseConfig({ ...base(), architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe' })).toThrow(
      'the model is Qwen3MoeForCausalLM',
    );
  });

  it('validates every field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ hidden_size: 0 }, 'hidden_size must be an integer ≥ 1'],
      [{ hidden_size: '64' }, 'hidden_size must be a finite number'],
      [{ num_attention_heads: 6, num_key_value_heads: 4 }, 'must be a multiple of num_key_value_heads'],
      [{ head_dim: 15 }, 'head_dim (15) must be even'],
      [{ intermediate_size: 1.5 }, 'intermediate_size must be an integer'],
      [{ num_hidden_layers: undefined }, 'num_hidden_layers is missing'],
      [{ vocab_size: -1 }, 'vocab_size must be an integer ≥ 1'],
      [{ rms_norm_eps: 0 }, 'rms_norm_eps must be positive'],
      [{ rope_theta: -1 }, 'rope_theta must be positive'],
      [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope scaling "yarn" is not supported'],
      [{ tie_word_embeddings: 'yes' }, 'tie_word_embeddings must be true or false'],
      [{ torch_dtype: 'float8' }, 'torch_dtype "float8" is not supported'],
      [{ attention_bias: true }, 'attention_bias is true'],
      [{ use_sliding_window: true }, 'use_sliding_window is true'],
      [{ eos_token_id: 1000 }, 'eos_token_id 1000 is outside the vocabulary'],
      [{ max_position_embeddings: undefined }, 'max_position_embeddings is missing'],
    ];
    for (const [edit, message] of cases) expect(() => parseConfig({ ...base(), ...edit }), message).toThrow(message);
  });

  it('takes rope_theta from rope_parameters and dtype from "dtype" (transformers 5)', () => {
    const json = { ...base(), rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 5e5 }, torch_dtype: undefined, dtype: 'bfloat16' };
    expect(parseConfig(json)).toMatchObject({ ropeTheta: 5e5, dtype: 'bf16' });
  });
});

describe('generation_config.json', () => {
  const config = parseConfig({ ...hfConfigJson(checkpoint({ numLayers: 1 }).config), eos_token_id: 7 });

  it('reads EOS lists and sampling defaults', () => {
    const g = parseGenerationDefaults({ eos_token_id: [9, 7], temperature: 0.6, top_p: 0.95, top_k: 20, min_p: 0, repetition_penalty: 1.1, bos_token_id: 3 }, 'g', config);
    expect(g).toEqual({ eosTokenIds: [9, 7], bosTokenId: 3, temperature: 0.6, topP: 0.95, topK: 20, minP: 0, repetitionPenalty: 1.1 });
  });

  it('falls back to config.json EOS; do_sample false means greedy', () => {
    expect(parseGenerationDefaults({ do_sample: false, temperature: 0.7 }, 'g', config)).toEqual({ eosTokenIds: [7], temperature: 0 });
  });

  it('rejects bad values', () => {
    expect(() => parseGenerationDefaults({ top_p: 1.5 }, 'g')).toThrow('g: top_p must be in (0, 1]');
    expect(() => parseGenerationDefaults({ eos_token_id: 'x' }, 'g')).toThrow('g: eos_token_id must be a token id');
    expect(() => parseGenerationDefaults({ eos_token_id: 500 }, 'g', config)).toThrow('token id 500 is outside the vocabulary');
  });
});

describe('safetensors checkpoints', () => {
  it('writes and reads single and sharded files with the same tensors', () => {
    const single = checkpoint({ numLayers: 3, seed: 5 });
    const sharded = checkpoint({ numLayers: 3, seed: 5, numShards: 4 });
    expect(sharded.files).toEqual([1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`));
    const a = SafetensorsCheckpoint.open(device, single.dir);
    const b = SafetensorsCheckpoint.open(device, sharded.dir);
    expect(b.names.sort()).toEqual(a.names.sort());
    expect(b.totalBytes).toBe(a.totalBytes);
    for (const name of a.names) {
      const x = a.get(name)!;
      const y = b.get(name)!;
      expect(y.shape).toEqual(x.shape);
      const bytesA = readFileSync(path.join(single.dir, x.file)).subarray(x.byteOffset, x.byteOffset + x.byteLength);
      const bytesB = readFileSync(path.join(sharded.dir, y.file)).subarray(y.byteOffset, y.byteOffset + y.byteLength);
      expect(Buffer.compare(bytesA, bytesB), name).toBe(0);
    }
    a.close();
    b.close();
  });

  it('is deterministic: the same seed writes the same bytes', () => {
    const a = checkpoint({ seed: 42, dtype: 'bf16' });
    const b = checkpoint({ seed: 42, dtype: 'bf16' });
    expect(readFileSync(path.join(a.dir, 'model.safetensors')).equals(readFileSync(path.join(b.dir, 'model.safetensors')))).toBe(true);
  });

  it('reports progress up to the total', async () => {
    const { dir } = checkpoint();
    const seen: [number, number][] = [];
    const model = await CausalLM.load(dir, device, { onProgress: (done, total) => seen.push([done, total]) });
    expect(seen.at(-1)).toEqual([model.weights.bytes, model.weights.bytes]);
    model.dispose();
  });
});

describe('broken checkpoints name the file and the tensor', () => {
  it('no weights at all', async () => {
    const { dir } = checkpoint();
    unlinkSync(path.join(dir, 'model.safetensors'));
    await expect(load(dir)).rejects.toThrow('no model.safetensors or model.safetensors.index.json');
  });

  it('a missing shard', async () => {
    const { dir } = checkpoint({ numShards: 3, numLayers: 3 });
    unlinkSync(path.join(dir, 'model-00002-of-00003.safetensors'));
    await expect(load(dir)).rejects.toThrow(/^model-00002-of-00003\.safetensors: missing file \(model\.safetensors\.index\.json maps tensors to it, e\.g\. model\.layers\.\d/);
  });

  it('a truncated file', async () => {
    const { dir } = checkpoint({ tieWordEmbeddings: false });
    const file = path.join(dir, 'model.safetensors');
    truncateSync(file, readFileSync(file).length - 10);
    await expect(load(dir)).rejects.toThrow(/^model\.safetensors: lm_head\.weight: data runs past the end of the file .*: truncated\?$/);
  });

  it('a file truncated inside its header', async () => {
    const { dir } = checkpoint();
    truncateSync(path.join(dir, 'model.safetensors'), 100);
    await expect(load(dir)).rejects.toThrow(/^model\.safetensors: the \d+-byte header runs past the end of the file \(size 100\): truncated\?$/);
  });

  it('a shape that disagrees with config.json', async () => {
    const { dir } = checkpoint({ intermediateSize: 96, hiddenSize: 64 });
    editConfig(dir, (j) => (j.intermediate_size = 80));
    await expect(load(dir)).rejects.toThrow(
      'model.safetensors: model.layers.0.mlp.gate_proj.weight: shape [96, 64], expected [80, 64] from config.json',
    );
  });

  it('an unsupported dtype', async () => {
    const { dir } = checkpoint({ numLayers: 2 });
    const file = path.join(dir, 'model.safetensors');
    patch(file, '"model.layers.1.self_attn.v_proj.weight":{"dtype":"F32"', '"model.layers.1.self_attn.v_proj.weight":{"dtype":"I32"');
    await expect(load(dir)).rejects.toThrow('model.safetensors: model.layers.1.self_attn.v_proj.weight: dtype "I32" is not supported (BF16, F16 or F32)');
  });

  it('q_norm and k_norm of different dtypes', async () => {
    const dir = path.join(root, `mixed-${counter++}`);
    const { config } = randomCheckpoint({ dir, dtype: 'f32', numLayers: 1 });
    // Rewrite k_norm as bf16: the norms reach one kernel that reads both with a single dtype.
    const source = SafetensorsCheckpoint.open(device, dir);
    const tensors = source.names.map((name) => {
      const e = source.get(name)!;
      const raw = readFileSync(path.join(dir, e.file)).subarray(e.byteOffset, e.byteOffset + e.byteLength);
      const f32 = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const isK = name.endsWith('k_norm.weight');
      return { name, dtype: isK ? ('BF16' as const) : ('F32' as const), shape: e.shape, data: isK ? new Uint16Array(f32.length).fill(0x3f80) : f32 };
    });
    source.close();
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    expect(config.numLayers).toBe(1);
    await expect(load(dir)).rejects.toThrow('model.safetensors: model.layers.0.self_attn.k_norm.weight: dtype bf16, expected f32 like model.layers.0.self_attn.q_norm.weight');
  });

  it('a missing tensor', async () => {
    const { dir } = checkpoint({ numLayers: 2 });
    patch(path.join(dir, 'model.safetensors'), '"model.layers.1.mlp.up_proj.weight"', '"model.layers.1.mlp.up_proj.weighX"');
    await expect(load(dir)).rejects.toThrow('model.safetensors: missing tensor model.layers.1.mlp.up_proj.weight');
  });

  it('a missing lm_head when embeddings are not tied', async () => {
    const { dir } = checkpoint({ tieWordEmbeddings: true });
    editConfig(dir, (j) => (j.tie_word_embeddings = false));
    await expect(load(dir)).rejects.toThrow('model.safetensors: missing tensor lm_head.weight (tie_word_embeddings is false)');
  });

  it('more layers in the weights than in config.json', async () => {
    const { dir } = checkpoint({ numLayers: 3 });
    editConfig(dir, (j) => (j.num_hidden_layers = 2));
    await expect(load(dir)).rejects.toThrow(/^model\.safetensors: model\.layers\.2\..*: config\.json has num_hidden_layers = 2$/);
  });

  it('an index that lists a tensor its shard does not hold', async () => {
    const { dir } = checkpoint({ numShards: 2 });
    const index = path.join(dir, 'model.safetensors.index.json');
    const json = JSON.parse(readFileSync(index, 'utf8'));
    json.weight_map['model.layers.9.extra.weight'] = 'model-00002-of-00002.safetensors';
    writeFileSync(index, JSON.stringify(json));
    await expect(load(dir)).rejects.toThrow('model-00002-of-00002.safetensors: missing tensor model.layers.9.extra.weight (listed in model.safetensors.index.json)');
  });

  it('a header entry whose byte range does not match its shape', async () => {
    const { dir } = checkpoint();
    patch(path.join(dir, 'model.safetensors'), '"model.norm.weight":{"dtype":"F32","shape":[64]', '"model.norm.weight":{"dtype":"F32","shape":[63]');
    await expect(load(dir)).rejects.toThrow(/^model\.safetensors: model\.norm\.weight: data_offsets \[\d+, \d+\] hold 256 bytes but F32\[63\] needs 252$/);
  });

  it('the wrong architecture', async () => {
    const { dir } = checkpoint();
    editConfig(dir, (j) => {
      j.architectures = ['LlamaForCausalLM'];
      j.model_type = 'llama';
    });
    await expect(load(dir)).rejects.toThrow(`${path.join(dir, 'config.json')}: the model is LlamaForCausalLM; Paralon runs Qwen3ForCausalLM`);
  });
});
