// Exports a Hugging Face / Paralon Qwen3 checkpoint directory (config.json, tokenizer.json,
// tokenizer_config.json, safetensors) to one GGUF file that llama.cpp loads as architecture `qwen3`,
// following what llama.cpp's convert_hf_to_gguf.py writes for Qwen3ForCausalLM:
//
// - Tensors renamed to llama.cpp's names (token_embd, blk.N.attn_q, …, output_norm, output) and kept in
//   the checkpoint's layout. No Q/K row permutation: that is LlamaModel's (interleaved RoPE); Qwen2/3
//   use rotate-half ("NEOX") RoPE in llama.cpp too and convert their weights as they are.
// - Matrices in the requested dtype (F32 for the accuracy cross-check; F16/BF16 for speed runs); 1-D
//   norm weights always F32, as the converter keeps them. A tied LM head is not written: llama.cpp
//   reuses token_embd for the output when output.weight is absent.
// - The byte-level BPE tokenizer as metadata (tokenizer.ggml.model "gpt2", pre-tokenizer "qwen2"):
//   every id up to the model's vocab_size ([PADn] UNUSED past the tokenizer's), token types as the
//   converter assigns them (added tokens that are special or look like <|…|> are CONTROL, other added
//   tokens USER_DEFINED), merges "a b", EOS/padding/BOS ids, add_bos false, and the chat template.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { fromBf16, fromF16, toBf16, toF16 } from '../../src/runtime/dtype.js';
import { readModelConfig } from '../../src/model/registry.js';
import type { Qwen3Config } from '../../src/model/qwen3.js';
import { gguf, writeGguf, type GgmlTypeName, type GgufTensorToWrite, type GgufValue } from './gguf-format.js';

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

/** llama.cpp's token types (llama_token_type). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** llama_ftype of a file whose matrices are all of one type. */
const FILE_TYPE: Record<GgufWeightDType, number> = { f32: 0, f16: 1, bf16: 32 };
const GGML_TYPE: Record<GgufWeightDType, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Hugging Face tensor name → llama.cpp tensor name (qwen3's tensor map). */
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

export function ggufTensorName(hfName: string): string {
  const global = GLOBAL_TENSORS[hfName];
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const local = m && LAYER_TENSORS[m[2]];
  if (!m || !local) throw new Error(`GGUF export: tensor ${hfName} is not part of a dense Qwen3 checkpoint`);
  return `blk.${m[1]}.${local}`;
}

/** Writes `outFile` from the checkpoint in `dir`. */
export function exportQwen3Gguf(dir: string, outFile: string, options: GgufExportOptions = {}): GgufExport {
  const dtype = options.dtype ?? 'f32';
  const config = readModelConfig(dir).config as Qwen3Config;
  const sources = readSafetensorsIndex(dir);
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.string('qwen3')],
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(options.name ?? path.basename(path.resolve(dir)))],
    ['general.file_type', gguf.u32(FILE_TYPE[dtype])],
    ['general.quantization_version', gguf.u32(2)],
    ['general.alignment', gguf.u32(32)],
    ...architectureMetadata(config),
    ...tokenizerMetadata(dir, config),
  ]);
  const tensors = [...sources.values()].map((src) => tensorToWrite(src, dtype));
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
  return { file: outFile, tensors: tensors.length, bytes: statSync(outFile).size };
}

function architectureMetadata(c: Qwen3Config): [string, GgufValue][] {
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

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

function tokenizerMetadata(dir: string, c: Qwen3Config): [string, GgufValue][] {
  const tok = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const cfg = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  if (tok.model.type !== 'BPE') throw new Error(`GGUF export: tokenizer model ${tok.model.type}; only byte-level BPE is exported`);
  const tokens: string[] = new Array(c.vocabSize);
  const types: number[] = new Array(c.vocabSize).fill(TokenType.UNUSED);
  for (const [text, id] of Object.entries(tok.model.vocab)) {
    if (id >= c.vocabSize) throw new Error(`GGUF export: token ${id} is past vocab_size ${c.vocabSize}`);
    tokens[id] = text;
    types[id] = TokenType.NORMAL;
  }
  const ids = new Map<string, number>();
  for (const t of tok.added_tokens) {
    if (t.id >= c.vocabSize) throw new Error(`GGUF export: added token ${t.id} is past vocab_size ${c.vocabSize}`);
    tokens[t.id] = t.content;
    types[t.id] = t.special || looksSpecial(t.content) ? TokenType.CONTROL : TokenType.USER_DEFINED;
    ids.set(t.content, t.id);
  }
  for (let i = 0; i < c.vocabSize; i++) tokens[i] ??= `[PAD${i}]`;
  const merges = tok.model.merges.map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));

  const special = (field: string): number | undefined => {
    const v = cfg[field];
    const text = typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String((v as { content: unknown }).content) : undefined;
    if (text === undefined) return undefined;
    const id = ids.get(text) ?? tok.model.vocab[text];
    if (id === undefined) throw new Error(`GGUF export: tokenizer_config.json ${field} ${text} is not a token`);
    return id;
  };
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string('qwen2')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(merges)],
  ];
  const eos = special('eos_token') ?? c.eosTokenIds[0];
  out.push(['tokenizer.ggml.eos_token_id', gguf.u32(eos)]);
  const pad = special('pad_token');
  if (pad !== undefined) out.push(['tokenizer.ggml.padding_token_id', gguf.u32(pad)]);
  const bos = special('bos_token') ?? readBosFromConfigs(dir);
  if (bos !== undefined) out.push(['tokenizer.ggml.bos_token_id', gguf.u32(bos)]);
  out.push(['tokenizer.ggml.add_bos_token', gguf.bool(cfg.add_bos_token === true)]);
  const template = chatTemplate(dir, cfg);
  if (template !== undefined) out.push(['tokenizer.chat_template', gguf.string(template)]);
  return out;
}

/** The converter's test for added tokens that should be control tokens even when not marked special. */
function looksSpecial(text: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text) ||
    (text.startsWith('<|') && text.endsWith('|>')) ||
    (text.startsWith('<｜') && text.endsWith('｜>')) ||
    (text.startsWith('<unused') && text.endsWith('>'))
  );
}

/** config.json's or generation_config.json's bos_token_id (tokenizer_config.json's Qwen3 bos_token is null). */
function readBosFromConfigs(dir: string): number | undefined {
  for (const name of ['config.json', 'generation_config.json']) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { bos_token_id?: unknown }).bos_token_id;
    if (typeof v === 'number') return v;
  }
  return undefined;
}

function chatTemplate(dir: string, cfg: Record<string, unknown>): string | undefined {
  const file = path.join(dir, 'chat_template.jinja');
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const t = cfg.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t as { name: string; template: string }[]).find((x) => x.name === 'default')?.template;
  return undefined;
}

/** Every tensor name llama.cpp's qwen3 loader will look for, with its row-major shape. */
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

type SourceDType = 'F32' | 'F16' | 'BF16';

interface SourceTensor {
  name: string;
  file: string;
  dtype: SourceDType;
  shape: number[];
  byteOffset: number;
  byteLength: number;
}

/** The tensors of a single-file or sharded safetensors checkpoint: where each one's bytes are. */
function readSafetensorsIndex(dir: string): Map<string, SourceTensor> {
  const index = path.join(dir, 'model.safetensors.index.json');
  const files = existsSync(index)
    ? [...new Set(Object.values((JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map))]
    : ['model.safetensors'];
  const out = new Map<string, SourceTensor>();
  for (const name of files) {
    const file = path.join(dir, name);
    const fd = openSync(file, 'r');
    try {
      const len = Buffer.alloc(8);
      readSync(fd, len, 0, 8, 0);
      const headerBytes = Number(len.readBigUInt64LE(0));
      const json = Buffer.alloc(headerBytes);
      readSync(fd, json, 0, headerBytes, 8);
      const header = JSON.parse(json.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
      for (const [tensor, e] of Object.entries(header)) {
        if (tensor === '__metadata__') continue;
        if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') throw new Error(`${file}: ${tensor} is ${e.dtype}; only F32/F16/BF16 export`);
        out.set(tensor, {
          name: tensor,
          file,
          dtype: e.dtype,
          shape: e.shape,
          byteOffset: 8 + headerBytes + e.data_offsets[0],
          byteLength: e.data_offsets[1] - e.data_offsets[0],
        });
      }
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

function tensorToWrite(src: SourceTensor, dtype: GgufWeightDType): GgufTensorToWrite {
  const target: GgmlTypeName = src.shape.length === 1 ? 'F32' : GGML_TYPE[dtype];
  return {
    name: ggufTensorName(src.name),
    type: target,
    shape: src.shape,
    data: () => convert(readBytes(src), src.dtype, target),
  };
}

function readBytes(src: SourceTensor): Uint8Array {
  const out = new Uint8Array(src.byteLength);
  const fd = openSync(src.file, 'r');
  try {
    for (let done = 0; done < out.length;) {
      const n = readSync(fd, out, done, Math.min(out.length - done, 1 << 30), src.byteOffset + done);
      if (n === 0) throw new Error(`${src.file}: ${src.name}: file ends inside the tensor`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Element conversion; same-type copies are bit-exact, narrowing rounds to nearest even. */
function convert(bytes: Uint8Array, from: SourceDType, to: GgmlTypeName): ArrayBufferView {
  if (from === to) return bytes;
  const f32 =
    from === 'F32'
      ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : from === 'BF16'
        ? fromBf16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2))
        : fromF16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
  return to === 'F32' ? f32 : to === 'BF16' ? toBf16(f32) : toF16(f32);
}
