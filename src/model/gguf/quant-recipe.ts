// Which element type each tensor of an exported GGUF gets: llama.cpp's llama_tensor_get_type (src/
// llama-quant.cpp) without an importance matrix, for the file types `paralon quantize` writes. The
// rules that apply to a dense Qwen3:
//
// - 1-D tensors (norms) stay F32; so does every tensor of an F32 file, etc. — float file types are
//   uniform.
// - output.weight, or token_embd.weight when the LM head is tied to it: Q6_K for every K file type
//   (Q8_0 stays Q8_0); Q8_0 when its rows do not divide into the file's blocks.
// - Q4_K_M and Q5_K_M: attn_v.weight and ffn_down.weight of the layers use_more_bits picks (the first
//   and last eighth, and every third layer between) are Q6_K; every other matrix is Q4_K (Q5_K).
// - A matrix whose rows do not divide into its type's blocks falls back. llama.cpp's fallbacks are
//   Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0 (then F16 when rows are not whole 32-blocks either);
//   Paralon has no Q5_0/Q5_1 kernels, so Q4_K and Q5_K fall back to Q8_0 instead — a deviation from
//   llama.cpp's bytes, reported by the export. A Q8_0 matrix with rows not whole 32-blocks becomes F16
//   (llama.cpp refuses the file). The official Qwen3 shapes are all multiples of 256.
//
// Layer counters (i_attention_wv, i_ffn_down) are the layer index: llama.cpp visits tensors ordered
// by layer (llama_model_loader's weight_name_comparer), so for a dense model they coincide.
import type { GgmlTypeName } from './types.js';

/** The file types `paralon quantize` writes, by llama.cpp's names. */
export const GGUF_FILE_TYPES = {
  F32: { fileType: 0, base: 'F32' },
  F16: { fileType: 1, base: 'F16' },
  BF16: { fileType: 32, base: 'BF16' },
  Q8_0: { fileType: 7, base: 'Q8_0' },
  Q4_K_M: { fileType: 15, base: 'Q4_K' },
  Q5_K_M: { fileType: 17, base: 'Q5_K' },
  Q6_K: { fileType: 18, base: 'Q6_K' },
} as const satisfies Record<string, { fileType: number; base: GgmlTypeName }>;
export type GgufFileType = keyof typeof GGUF_FILE_TYPES;

const BLOCK: Partial<Record<GgmlTypeName, number>> = { Q8_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256 };

export interface TensorTypeChoice {
  type: GgmlTypeName;
  /** Set when the rows did not fit the recipe's type: what it wanted, and why this one instead. */
  fallback?: string;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer between. */
export function useMoreBits(layer: number, numLayers: number): boolean {
  const eighth = Math.trunc(numLayers / 8);
  return layer < eighth || layer >= Math.trunc((7 * numLayers) / 8) || (layer - eighth) % 3 === 2;
}

/**
 * The type of tensor `name` (GGUF name, row-major `shape`) in a file of `fileType`, for a model of
 * `numLayers` layers whose LM head is `tied` to token_embd (no output.weight).
 */
export function tensorType(fileType: GgufFileType, name: string, shape: readonly number[], numLayers: number, tied: boolean): TensorTypeChoice {
  const base: GgmlTypeName = GGUF_FILE_TYPES[fileType].base;
  if (shape.length < 2) return { type: 'F32' };
  if (!(base in BLOCK)) return { type: base };
  const mix = fileType === 'Q4_K_M' || fileType === 'Q5_K_M';
  const cols = shape[shape.length - 1];
  const layer = /^blk\.(\d+)\./.exec(name);
  let type: GgmlTypeName = base;
  if (name === 'output.weight' || (tied && name === 'token_embd.weight')) {
    if (cols % BLOCK[base]! !== 0) type = 'Q8_0';
    else if (base !== 'Q8_0') type = 'Q6_K';
  } else if (mix && layer && (name.endsWith('.attn_v.weight') || name.endsWith('.ffn_down.weight') || name.endsWith('.ffn_down_exps.weight'))) {
    if (useMoreBits(Number(layer[1]), numLayers)) type = 'Q6_K';
  }
  if (cols % BLOCK[type]! === 0) return { type };
  const wanted = type;
  type = cols % 32 === 0 ? 'Q8_0' : 'F16';
  const llama = { Q4_K: 'writes Q5_0, which Paralon does not read', Q5_K: 'writes Q5_1, which Paralon does not read', Q8_0: 'refuses' }[wanted as string];
  return { type, fallback: `rows of ${cols} do not divide into ${wanted} blocks: ${type}` + (llama ? ` (llama.cpp ${llama})` : '') };
}
