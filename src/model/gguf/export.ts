// The export of a Hugging Face Qwen3 or Qwen3-MoE checkpoint directory to one GGUF, as llama.cpp's
// convert_hf_to_gguf.py writes Qwen3ForCausalLM (`qwen3`) and Qwen3MoeForCausalLM (`qwen3moe`):
//
// - Tensors renamed to llama.cpp's names and kept in the checkpoint's layout (no Q/K row permutation:
//   see qwen3-config.ts).
// - Matrices in the requested dtype (every matrix alike, as llama-quantize --pure), or by a llama.cpp
//   file type's recipe (quant-recipe.ts: Q4_K_M mixes Q4_K and Q6_K); 1-D norm weights and the MoE
//   router (ffn_gate_inp) always F32, as the converter keeps them. A tied LM head is not written:
//   llama.cpp reuses token_embd when output.weight is absent.
// - MoE experts: each layer's per-expert gate/up/down matrices stacked into one 3-D tensor per
//   projection (ffn_gate_exps [E, I, H] …), converted one expert at a time.
import path from 'node:path';
import { statSync } from 'node:fs';
import { Device } from '../../runtime/index.js';
import { fromBf16, fromF16, isQuantized, toBf16, toF16, type QuantDType } from '../../runtime/dtype.js';
import { quantize } from '../../quant/index.js';
import type { WeightDType } from '../config.js';
import type { Qwen3Config } from '../qwen3.js';
import type { Qwen3MoeConfig } from '../qwen3-moe.js';
import { readModelConfig } from '../registry.js';
import { SafetensorsCheckpoint } from '../safetensors.js';
import type { TensorEntry } from '../weights.js';
import { qwen3ToGguf, QWEN3_GGUF_ARCHITECTURE } from './qwen3-config.js';
import { QWEN3MOE_GGUF_ARCHITECTURE, qwen3MoeToGguf } from './qwen3moe-config.js';
import { expertTensor, ggufTensorName } from './tensor-names.js';
import { GGUF_FILE_TYPES, tensorType, type GgufFileType } from './quant-recipe.js';
import { tokenizerMetadataSource, tokenizerToGguf } from './tokenizer-metadata.js';
import { gguf, type GgmlTypeName, type GgufValue } from './types.js';
import { writeGguf, type GgufTensorToWrite } from './writer.js';

export type GgufWeightDType = WeightDType | QuantDType;

export interface GgufExportOptions {
  /**
   * Element type of the matrices (default f32): a float type, or one ggml block type for every
   * matrix (quantized by src/quant, ggml's reference quantizers without an importance matrix).
   */
  dtype?: GgufWeightDType;
  /** A llama.cpp file type instead of `dtype`: each tensor's type by llama-quantize's recipe. */
  fileType?: GgufFileType;
  /** The block quantizer (default src/quant's, ggml's reference bytes; the bench passes llama.cpp's own). */
  quantize?: (values: Float32Array, dtype: QuantDType) => Uint8Array;
  /** general.name (default: the directory's name). */
  name?: string;
  /** Called after each tensor is written: tensors done, their count, and the tensor's GGUF name. */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface GgufExport {
  file: string;
  tensors: number;
  bytes: number;
  /** Tensors per element type. */
  types: Partial<Record<GgmlTypeName, number>>;
  /** Tensors whose rows did not fit the recipe's type, and what they got instead. */
  fallbacks: string[];
}

/** llama_ftype of a file whose matrices are all of one type (the K types as llama.cpp's _S mixes). */
const FILE_TYPE: Record<GgufWeightDType, number> = { f32: 0, f16: 1, bf16: 32, q8_0: 7, q4_k: 14, q5_k: 16, q6_k: 18 };
const GGML_TYPE: Record<GgufWeightDType, GgmlTypeName> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_k: 'Q4_K', q5_k: 'Q5_K', q6_k: 'Q6_K',
};

/** Every tensor name llama.cpp's qwen3 / qwen3moe loader looks for, with its row-major shape. */
function expectedShapes(c: Qwen3Config | Qwen3MoeConfig, moe: boolean): Map<string, number[]> {
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
    if (moe) {
      const { numExperts: E, moeIntermediateSize: I } = c as Qwen3MoeConfig;
      m.set(`${p}ffn_gate_inp.weight`, [E, H]);
      m.set(`${p}ffn_gate_exps.weight`, [E, I, H]);
      m.set(`${p}ffn_up_exps.weight`, [E, I, H]);
      m.set(`${p}ffn_down_exps.weight`, [E, H, I]);
    } else {
      m.set(`${p}ffn_gate.weight`, [c.intermediateSize, H]);
      m.set(`${p}ffn_up.weight`, [c.intermediateSize, H]);
      m.set(`${p}ffn_down.weight`, [H, c.intermediateSize]);
    }
  }
  return m;
}

/** Writes `outFile` from the HF Qwen3 or Qwen3-MoE checkpoint in `dir` (config.json, tokenizer files, safetensors). */
export function exportQwen3Gguf(dir: string, outFile: string, options: GgufExportOptions = {}): GgufExport {
  if (options.dtype !== undefined && options.fileType !== undefined) throw new Error('GGUF export: give dtype or fileType, not both');
  const dtype = options.dtype ?? 'f32';
  const { arch, config: parsed } = readModelConfig(dir);
  const ggufArch = arch.ggufNames?.find((n) => n === QWEN3_GGUF_ARCHITECTURE || n === QWEN3MOE_GGUF_ARCHITECTURE);
  if (!ggufArch) throw new Error(`GGUF export: ${dir} is ${arch.names[0]}; the exporter writes Qwen3 and Qwen3-MoE`);
  const moe = ggufArch === QWEN3MOE_GGUF_ARCHITECTURE;
  const config = parsed as Qwen3Config | Qwen3MoeConfig;
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.string(ggufArch)],
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(options.name ?? path.basename(path.resolve(dir)))],
    ['general.file_type', gguf.u32(options.fileType ? GGUF_FILE_TYPES[options.fileType].fileType : FILE_TYPE[dtype])],
    ['general.quantization_version', gguf.u32(2)],
    ['general.alignment', gguf.u32(32)],
    ...(moe ? qwen3MoeToGguf(config as Qwen3MoeConfig) : qwen3ToGguf(config)),
    ...tokenizerToGguf(tokenizerMetadataSource(dir, config.vocabSize, config.eosTokenIds[0])),
  ]);
  const device = Device.open('cpu', { threads: 1 });
  let count = 0;
  const types: Partial<Record<GgmlTypeName, number>> = {};
  const fallbacks: string[] = [];
  try {
    const checkpoint = SafetensorsCheckpoint.open(device, dir);
    try {
      const typeOf = (name: string, shape: number[]): GgmlTypeName => {
        // The converter keeps 1-D tensors and the MoE router in F32 (llama.cpp's quantizer skips ffn_gate_inp too).
        if (shape.length === 1 || name.endsWith('.ffn_gate_inp.weight')) return 'F32';
        if (!options.fileType) return GGML_TYPE[dtype];
        const choice = tensorType(options.fileType, name, shape, config.numLayers, config.tieWordEmbeddings);
        if (choice.fallback) fallbacks.push(`${name}: ${choice.fallback}`);
        return choice.type;
      };
      const tensors = tensorsToWrite(checkpoint, typeOf, options.quantize ?? quantize);
      for (const t of tensors) types[t.type] = (types[t.type] ?? 0) + 1;
      const expected = expectedShapes(config, moe);
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
      let done = 0;
      // writeGguf asks for each tensor's data right after writing the previous one.
      const reporting = tensors.map((t, i) => ({
        ...t,
        data: () => {
          if (i > 0) options.onProgress?.(++done, tensors.length, tensors[i - 1].name);
          return t.data();
        },
      }));
      writeGguf(outFile, metadata, reporting);
      if (tensors.length > 0) options.onProgress?.(++done, tensors.length, tensors[tensors.length - 1].name);
      count = tensors.length;
    } finally {
      checkpoint.close();
    }
  } finally {
    device.dispose();
  }
  return { file: outFile, tensors: count, bytes: statSync(outFile).size, types, fallbacks };
}

type TypeOf = (name: string, shape: number[]) => GgmlTypeName;
type Quantizer = (values: Float32Array, dtype: QuantDType) => Uint8Array;

/** The GGUF tensors of a checkpoint: one per tensor, except each layer's experts, stacked per projection. */
function tensorsToWrite(checkpoint: SafetensorsCheckpoint, typeOf: TypeOf, quantizer: Quantizer): GgufTensorToWrite[] {
  const out: GgufTensorToWrite[] = [];
  const stacks = new Map<string, TensorEntry[]>();
  for (const name of checkpoint.names) {
    const src = checkpoint.get(name)!;
    const expert = expertTensor(name);
    if (!expert) {
      out.push(tensorToWrite(checkpoint, src, typeOf, quantizer));
      continue;
    }
    const list = stacks.get(expert.stacked) ?? [];
    list[expert.expert] = src;
    stacks.set(expert.stacked, list);
  }
  for (const [stacked, experts] of stacks) {
    const missing = Array.from(experts, (e, i) => (e ? -1 : i)).filter((i) => i >= 0);
    if (missing.length > 0) throw new Error(`GGUF export: ${stacked.replace('.weight', '')}: experts ${missing.join(', ')} are missing`);
    const first = experts[0];
    for (const e of experts)
      if (e.shape.join() !== first.shape.join() || e.dtype !== first.dtype)
        throw new Error(`GGUF export: ${e.name} is ${e.dtype}[${e.shape}], ${first.name} ${first.dtype}[${first.shape}]; experts must match`);
    const name = ggufTensorName(stacked)!;
    const shape = [experts.length, ...first.shape];
    const to = dtypeOfGgml(name, typeOf(name, shape));
    out.push({
      name,
      type: GGML_TYPE[to],
      shape,
      data: () => concat(experts.map((e) => convert(checkpoint.bytes(e), e.dtype as WeightDType, to, quantizer))),
    });
  }
  return out;
}

const DTYPE_OF_GGML = Object.fromEntries(Object.entries(GGML_TYPE).map(([d, g]) => [g, d])) as Record<GgmlTypeName, GgufWeightDType>;

function dtypeOfGgml(name: string, type: GgmlTypeName): GgufWeightDType {
  const to = DTYPE_OF_GGML[type];
  if (!to) throw new Error(`GGUF export: ${name}: no conversion to ${type}`);
  return to;
}

function tensorToWrite(checkpoint: SafetensorsCheckpoint, src: TensorEntry, typeOf: TypeOf, quantizer: Quantizer): GgufTensorToWrite {
  const name = ggufTensorName(src.name) ?? fail(`GGUF export: tensor ${src.name} is not part of a Qwen3 or Qwen3-MoE checkpoint`);
  const to = dtypeOfGgml(name, typeOf(name, src.shape));
  return { name, type: GGML_TYPE[to], shape: src.shape, data: () => convert(checkpoint.bytes(src), src.dtype as WeightDType, to, quantizer) };
}

function concat(parts: ArrayBufferView[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}

function fail(message: string): never {
  throw new Error(message);
}

/** Element conversion; same-type copies are bit-exact, narrowing rounds to nearest even, block types quantize. */
function convert(bytes: Uint8Array, from: WeightDType, to: GgufWeightDType, quantizer: (values: Float32Array, dtype: QuantDType) => Uint8Array): ArrayBufferView {
  if (from === to) return bytes;
  const f32 =
    from === 'f32'
      ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : from === 'bf16'
        ? fromBf16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2))
        : fromF16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
  if (isQuantized(to)) return quantizer(f32, to);
  return to === 'f32' ? f32 : to === 'bf16' ? toBf16(f32) : toF16(f32);
}
