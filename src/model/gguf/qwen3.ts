// Qwen3 in GGUF, llama.cpp's architecture `qwen3`: its hyper-parameter keys (`qwen3.*`) ⇄ Qwen3Config,
// its tensor names (token_embd, blk.N.attn_q, …) ⇄ Hugging Face names, and the export of an HF
// checkpoint directory to one GGUF, as llama.cpp's convert_hf_to_gguf.py writes Qwen3ForCausalLM:
//
// - Tensors kept in the checkpoint's layout. No Q/K row permutation: that is LlamaModel's (interleaved
//   RoPE); llama.cpp runs qwen3 with rotate-half ("NEOX") RoPE, like transformers, and its converter
//   writes Qwen2/Qwen3 weights as they are. So GGUF q/k rows are used as they are too.
// - Matrices in the requested dtype; 1-D norm weights always F32, as the converter keeps them. A tied
//   LM head is not written: llama.cpp reuses token_embd when output.weight is absent.
import path from 'node:path';
import { statSync } from 'node:fs';
import { Device } from '../../runtime/index.js';
import { fromBf16, fromF16, toBf16, toF16 } from '../../runtime/dtype.js';
import { readQwen3Config, type Qwen3Config, type WeightDType } from '../config.js';
import { SafetensorsCheckpoint, type TensorEntry } from '../safetensors.js';
import type { GgufMetadata } from './metadata.js';
import { tokenizerMetadataSource, tokenizerToGguf } from './tokenizer-metadata.js';
import { gguf, type GgmlTypeName, type GgufValue } from './types.js';
import { writeGguf, type GgufTensorToWrite } from './writer.js';

export const QWEN3_ARCHITECTURE = 'qwen3';

/** Hugging Face tensor name → llama.cpp tensor name, per layer (qwen3's tensor map). */
const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const GLOBAL_TENSORS: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const HF_OF_GLOBAL = Object.fromEntries(Object.entries(GLOBAL_TENSORS).map(([hf, g]) => [g, hf]));
const HF_OF_LAYER = Object.fromEntries(Object.entries(LAYER_TENSORS).map(([hf, g]) => [g, hf]));

/** The GGUF name of an HF Qwen3 tensor; throws for a tensor a dense Qwen3 does not have. */
export function ggufTensorName(hfName: string): string {
  const global = GLOBAL_TENSORS[hfName];
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const local = m && LAYER_TENSORS[m[2]];
  if (!m || !local) throw new Error(`GGUF export: tensor ${hfName} is not part of a dense Qwen3 checkpoint`);
  return `blk.${m[1]}.${local}`;
}

/** The HF name of a qwen3 GGUF tensor, or undefined for one the architecture does not use. */
export function hfTensorName(ggufName: string): string | undefined {
  const global = HF_OF_GLOBAL[ggufName];
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const local = m && HF_OF_LAYER[m[2]];
  return m && local ? `model.layers.${m[1]}.${local}` : undefined;
}

/** GGUF element types that are one of the runtime's float dtypes. */
export const FLOAT_DTYPE: Partial<Record<GgmlTypeName, WeightDType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/**
 * The Qwen3Config a qwen3 GGUF describes. `vocabSize` comes from token_embd's rows, `tied` from
 * whether output.weight exists, `dtype` from the matrices' element type; `eosTokenIds` from the
 * tokenizer metadata.
 */
export function qwen3ConfigFromGguf(meta: GgufMetadata, facts: { vocabSize: number; tied: boolean; dtype: WeightDType; eosTokenIds: number[] }): Qwen3Config {
  const arch = meta.string('general.architecture');
  if (arch !== QWEN3_ARCHITECTURE) throw new Error(`${meta.file}: general.architecture is "${arch}"; this loader reads "${QWEN3_ARCHITECTURE}"`);
  const k = (name: string) => `${QWEN3_ARCHITECTURE}.${name}`;
  const hiddenSize = meta.uint(k('embedding_length'), 1);
  const numHeads = perLayerUint(meta, k('attention.head_count'));
  const numKvHeads = meta.has(k('attention.head_count_kv')) ? perLayerUint(meta, k('attention.head_count_kv')) : numHeads;
  if (numHeads % numKvHeads !== 0)
    throw new Error(`${meta.file}: ${k('attention.head_count')} (${numHeads}) must be a multiple of ${k('attention.head_count_kv')} (${numKvHeads})`);
  // llama.cpp: the head width defaults to embedding_length / head_count; qwen3 requires K and V widths equal.
  const headDim = meta.uint(k('attention.key_length'), 2, true) ?? hiddenSize / numHeads;
  const valueDim = meta.uint(k('attention.value_length'), 2, true) ?? headDim;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || valueDim !== headDim)
    throw new Error(`${meta.file}: ${k('attention.key_length')} (${headDim}) and ${k('attention.value_length')} (${valueDim}) must be one even head width`);
  const scaling = meta.string(k('rope.scaling.type'), true) ?? 'none';
  const factor = meta.float(k('rope.scaling.factor'), undefined, true) ?? 1;
  if (!((scaling === 'none' || scaling === 'linear') && (factor === 1 || factor === 0)))
    throw new Error(`${meta.file}: ${k('rope.scaling.type')} "${scaling}" with factor ${factor}: rope scaling is not supported (only the default RoPE)`);
  if (meta.has(k('vocab_size')) && meta.uint(k('vocab_size')) !== facts.vocabSize)
    throw new Error(`${meta.file}: ${k('vocab_size')} is ${meta.uint(k('vocab_size'))}, token_embd.weight has ${facts.vocabSize} rows`);
  for (const id of facts.eosTokenIds)
    if (id >= facts.vocabSize) throw new Error(`${meta.file}: end-of-generation token ${id} is outside the model's ${facts.vocabSize} rows`);
  return {
    hiddenSize,
    intermediateSize: perLayerUint(meta, k('feed_forward_length')),
    numLayers: meta.uint(k('block_count'), 1),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: facts.vocabSize,
    rmsNormEps: meta.float(k('attention.layer_norm_rms_epsilon'), 0),
    // llama.cpp's default when the key is absent.
    ropeTheta: meta.float(k('rope.freq_base'), 0, true) ?? 10_000,
    tieWordEmbeddings: facts.tied,
    maxPositionEmbeddings: meta.uint(k('context_length'), 1),
    dtype: facts.dtype,
    eosTokenIds: facts.eosTokenIds,
  };
}

/** A per-layer count that llama.cpp accepts as one integer or one per layer; Paralon needs one value. */
function perLayerUint(meta: GgufMetadata, key: string): number {
  const v = meta.get(key);
  if (v?.kind === 'array') {
    const values = meta.ints(key);
    if (values.length === 0 || values.some((x) => x !== values[0] || !(x >= 1)))
      throw new Error(`${meta.file}: ${key} differs between layers (${values.join(', ')}); Paralon runs uniform layers`);
    return values[0];
  }
  return meta.uint(key, 1);
}

// --------------------------------------------------------------------------------- export

export type GgufWeightDType = 'f32' | 'f16' | 'bf16';

export interface GgufExportOptions {
  /** Element type of the matrices (default f32). */
  dtype?: GgufWeightDType;
  /** general.name (default: the directory's name). */
  name?: string;
}

export interface GgufExport {
  file: string;
  tensors: number;
  bytes: number;
}

/** llama_ftype of a file whose matrices are all of one type. */
const FILE_TYPE: Record<GgufWeightDType, number> = { f32: 0, f16: 1, bf16: 32 };
const GGML_TYPE: Record<GgufWeightDType, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** The qwen3.* keys for a config. */
export function qwen3Metadata(c: Qwen3Config): [string, GgufValue][] {
  return [
    ['qwen3.block_count', gguf.u32(c.numLayers)],
    ['qwen3.context_length', gguf.u32(c.maxPositionEmbeddings)],
    ['qwen3.embedding_length', gguf.u32(c.hiddenSize)],
    ['qwen3.feed_forward_length', gguf.u32(c.intermediateSize)],
    ['qwen3.attention.head_count', gguf.u32(c.numHeads)],
    ['qwen3.attention.head_count_kv', gguf.u32(c.numKvHeads)],
    // Explicit head width: Qwen3's head_dim is not hidden / heads (128 vs 64 for Qwen3-0.6B).
    ['qwen3.attention.key_length', gguf.u32(c.headDim)],
    ['qwen3.attention.value_length', gguf.u32(c.headDim)],
    ['qwen3.rope.freq_base', gguf.f32(c.ropeTheta)],
    ['qwen3.attention.layer_norm_rms_epsilon', gguf.f32(c.rmsNormEps)],
  ];
}

/** Every tensor name llama.cpp's qwen3 loader looks for, with its row-major shape. */
function expectedShapes(c: Qwen3Config): Map<string, number[]> {
  const H = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const m = new Map<string, number[]>([
    ['token_embd.weight', [c.vocabSize, H]],
    ['output_norm.weight', [H]],
  ]);
  if (!c.tieWordEmbeddings) m.set('output.weight', [c.vocabSize, H]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `blk.${i}.`;
    m.set(`${p}attn_norm.weight`, [H]);
    m.set(`${p}attn_q.weight`, [q, H]);
    m.set(`${p}attn_k.weight`, [kv, H]);
    m.set(`${p}attn_v.weight`, [kv, H]);
    m.set(`${p}attn_output.weight`, [H, q]);
    m.set(`${p}attn_q_norm.weight`, [c.headDim]);
    m.set(`${p}attn_k_norm.weight`, [c.headDim]);
    m.set(`${p}ffn_norm.weight`, [H]);
    m.set(`${p}ffn_gate.weight`, [c.intermediateSize, H]);
    m.set(`${p}ffn_up.weight`, [c.intermediateSize, H]);
    m.set(`${p}ffn_down.weight`, [H, c.intermediateSize]);
  }
  return m;
}

/** Writes `outFile` from the HF Qwen3 checkpoint in `dir` (config.json, tokenizer files, safetensors). */
export function exportQwen3Gguf(dir: string, outFile: string, options: GgufExportOptions = {}): GgufExport {
  const dtype = options.dtype ?? 'f32';
  const config = readQwen3Config(dir);
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.string(QWEN3_ARCHITECTURE)],
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(options.name ?? path.basename(path.resolve(dir)))],
    ['general.file_type', gguf.u32(FILE_TYPE[dtype])],
    ['general.quantization_version', gguf.u32(2)],
    ['general.alignment', gguf.u32(32)],
    ...qwen3Metadata(config),
    ...tokenizerToGguf(tokenizerMetadataSource(dir, config.vocabSize, config.eosTokenIds[0])),
  ]);
  const device = Device.open('cpu', { threads: 1 });
  let count = 0;
  try {
    const checkpoint = SafetensorsCheckpoint.open(device, dir);
    try {
      const tensors = checkpoint.names.map((name) => tensorToWrite(checkpoint, checkpoint.get(name)!, dtype));
      const expected = expectedShapes(config);
      for (const [name, shape] of expected) {
        const t = tensors.find((x) => x.name === name);
        if (!t) throw new Error(`GGUF export: ${dir} has no tensor for ${name}`);
        if (t.shape.join() !== shape.join()) throw new Error(`GGUF export: ${name} is [${t.shape}], config.json implies [${shape}]`);
      }
      if (tensors.length !== expected.size) {
        const extra = tensors.filter((t) => !expected.has(t.name)).map((t) => t.name);
        throw new Error(`GGUF export: unexpected tensors for this config: ${extra.join(', ')}`);
      }
      // The converter's order: token embedding, the layers in order, then the output norm and head.
      const rank = (name: string) => (name === 'token_embd.weight' ? -1 : name.startsWith('blk.') ? Number(name.split('.')[1]) : 1e9);
      tensors.sort((a, b) => rank(a.name) - rank(b.name));
      writeGguf(outFile, metadata, tensors);
      count = tensors.length;
    } finally {
      checkpoint.close();
    }
  } finally {
    device.dispose();
  }
  return { file: outFile, tensors: count, bytes: statSync(outFile).size };
}

function tensorToWrite(checkpoint: SafetensorsCheckpoint, src: TensorEntry, dtype: GgufWeightDType): GgufTensorToWrite {
  const target: GgmlTypeName = src.shape.length === 1 ? 'F32' : GGML_TYPE[dtype];
  return {
    name: ggufTensorName(src.name),
    type: target,
    shape: src.shape,
    data: () => convert(checkpoint.bytes(src), src.dtype, target),
  };
}

/** Element conversion; same-type copies are bit-exact, narrowing rounds to nearest even. */
function convert(bytes: Uint8Array, from: WeightDType, to: GgmlTypeName): ArrayBufferView {
  if (GGML_TYPE[from] === to) return bytes;
  const f32 =
    from === 'f32'
      ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : from === 'bf16'
        ? fromBf16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2))
        : fromF16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
  return to === 'F32' ? f32 : to === 'BF16' ? toBf16(f32) : toF16(f32);
}
