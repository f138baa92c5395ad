// The vocabulary of the GGUF v3 container (llama.cpp's model file), shared by the reader and the
// writer. Layout, all little-endian:
//   "GGUF" u32 version=3, u64 tensor count, u64 metadata count
//   metadata × n: string key, u32 value type, value   (string = u64 byte length + UTF-8 bytes;
//                 array = u32 item type, u64 count, items)
//   tensor info × n: string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type,
//                 u64 offset of the data from the start of the data section
//   padding to `general.alignment` (default 32), then the tensors' data, each start aligned the same way.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml tensors have at most 4 dimensions (GGML_MAX_DIMS). */
export const GGUF_MAX_DIMS = 4;

/** gguf_type: the metadata value types, by wire id. */
export const ValueType = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type ValueKind = keyof typeof ValueType;
export type ScalarKind = Exclude<ValueKind, 'array'>;
export const VALUE_KIND_OF_ID = Object.fromEntries(Object.entries(ValueType).map(([k, v]) => [v, k])) as Record<number, ValueKind>;
/** Bytes of one value on the wire (strings: the smallest, an empty one). */
export const VALUE_MIN_BYTES: Record<ScalarKind, number> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 8,
};

export type GgufScalar =
  | { kind: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { kind: 'u64' | 'i64'; value: bigint }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string };
export type GgufArray = { kind: 'array'; itemKind: ScalarKind; values: GgufScalar['value'][] };
export type GgufValue = GgufScalar | GgufArray;

/** Typed constructors for metadata values. */
export const gguf = {
  u16: (value: number): GgufValue => ({ kind: 'u16', value }),
  u32: (value: number): GgufValue => ({ kind: 'u32', value }),
  i32: (value: number): GgufValue => ({ kind: 'i32', value }),
  f32: (value: number): GgufValue => ({ kind: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ kind: 'bool', value }),
  string: (value: string): GgufValue => ({ kind: 'string', value }),
  strings: (values: string[]): GgufValue => ({ kind: 'array', itemKind: 'string', values }),
  i32s: (values: number[]): GgufValue => ({ kind: 'array', itemKind: 'i32', values }),
};

/**
 * ggml_type: the tensor element types, by wire id, with their block shape (values per block, bytes per
 * block) as ggml-common.h lays them out. Every type a GGUF may hold is listed so that any file's
 * tensor extents can be checked; which of them a device can run is decided when the model is loaded.
 */
export const GGML_TYPES = {
  F32: { id: 0, blockValues: 1, blockBytes: 4 },
  F16: { id: 1, blockValues: 1, blockBytes: 2 },
  Q4_0: { id: 2, blockValues: 32, blockBytes: 18 },
  Q4_1: { id: 3, blockValues: 32, blockBytes: 20 },
  Q5_0: { id: 6, blockValues: 32, blockBytes: 22 },
  Q5_1: { id: 7, blockValues: 32, blockBytes: 24 },
  Q8_0: { id: 8, blockValues: 32, blockBytes: 34 },
  Q8_1: { id: 9, blockValues: 32, blockBytes: 36 },
  Q2_K: { id: 10, blockValues: 256, blockBytes: 84 },
  Q3_K: { id: 11, blockValues: 256, blockBytes: 110 },
  Q4_K: { id: 12, blockValues: 256, blockBytes: 144 },
  Q5_K: { id: 13, blockValues: 256, blockBytes: 176 },
  Q6_K: { id: 14, blockValues: 256, blockBytes: 210 },
  Q8_K: { id: 15, blockValues: 256, blockBytes: 292 },
  IQ2_XXS: { id: 16, blockValues: 256, blockBytes: 66 },
  IQ2_XS: { id: 17, blockValues: 256, blockBytes: 74 },
  IQ3_XXS: { id: 18, blockValues: 256, blockBytes: 98 },
  IQ1_S: { id: 19, blockValues: 256, blockBytes: 50 },
  IQ4_NL: { id: 20, blockValues: 32, blockBytes: 18 },
  IQ3_S: { id: 21, blockValues: 256, blockBytes: 110 },
  IQ2_S: { id: 22, blockValues: 256, blockBytes: 82 },
  IQ4_XS: { id: 23, blockValues: 256, blockBytes: 136 },
  I8: { id: 24, blockValues: 1, blockBytes: 1 },
  I16: { id: 25, blockValues: 1, blockBytes: 2 },
  I32: { id: 26, blockValues: 1, blockBytes: 4 },
  I64: { id: 27, blockValues: 1, blockBytes: 8 },
  F64: { id: 28, blockValues: 1, blockBytes: 8 },
  IQ1_M: { id: 29, blockValues: 256, blockBytes: 56 },
  BF16: { id: 30, blockValues: 1, blockBytes: 2 },
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;
export const GGML_TYPE_OF_ID = Object.fromEntries(Object.entries(GGML_TYPES).map(([k, v]) => [v.id, k])) as Record<number, GgmlTypeName>;

/**
 * Bytes of a row-major tensor of `type` (shape outermost first), or an error message when its rows do
 * not divide into whole blocks or the size does not fit a safe integer.
 */
export function ggmlTensorBytes(type: GgmlTypeName, shape: readonly number[]): number | string {
  const { blockValues, blockBytes } = GGML_TYPES[type];
  const inner = shape[shape.length - 1];
  if (inner % blockValues !== 0) return `rows of ${inner} values do not divide into ${type} blocks of ${blockValues}`;
  let bytes = (inner / blockValues) * blockBytes;
  for (let d = 0; d < shape.length - 1; d++) {
    if (bytes > Number.MAX_SAFE_INTEGER / shape[d]) return `${type}[${shape.join(', ')}] is too large (size overflows)`;
    bytes *= shape[d];
  }
  return bytes;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
