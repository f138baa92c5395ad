// Element types and the host-side conversions to and from the 16-bit float formats.

/** Types stored one element at a time ('fp8': e4m3, the KV cache only; see native/fp8_e4m3.h). */
export type ElementDType = 'f32' | 'bf16' | 'f16' | 'i32' | 'fp8';
/** ggml's block-quantized weight formats, laid out bit for bit as in GGUF files (see src/quant/). */
export type QuantDType = 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k';
export type DType = ElementDType | QuantDType;

export const dtypeBytes: Record<ElementDType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, fp8: 1 };

/**
 * A dtype's storage unit: one element for the plain types, one block for the quantized ones (Q8_0: 32
 * values in 34 bytes; the K formats: 256 values in 144, 176 or 210 bytes). A quantized tensor's last
 * dimension is a multiple of its block, and its bytes are the blocks row by row.
 */
export const dtypeBlock: Record<DType, { readonly elements: number; readonly bytes: number }> = {
  f32: { elements: 1, bytes: 4 },
  bf16: { elements: 1, bytes: 2 },
  f16: { elements: 1, bytes: 2 },
  i32: { elements: 1, bytes: 4 },
  fp8: { elements: 1, bytes: 1 },
  q8_0: { elements: 32, bytes: 34 },
  q4_k: { elements: 256, bytes: 144 },
  q5_k: { elements: 256, bytes: 176 },
  q6_k: { elements: 256, bytes: 210 },
};

export const quantDTypes: readonly QuantDType[] = ['q8_0', 'q4_k', 'q5_k', 'q6_k'];

export function isQuantized(dtype: DType): dtype is QuantDType {
  return dtypeBlock[dtype].elements > 1;
}

/** Bytes of `numel` elements of `dtype`; for a quantized dtype `numel` must be whole blocks. */
export function dtypeByteLength(dtype: DType, numel: number): number {
  const { elements, bytes } = dtypeBlock[dtype];
  if (numel % elements !== 0) throw new Error(`${dtype}: ${numel} elements are not whole blocks of ${elements}`);
  return (numel / elements) * bytes;
}

/** The host array type that carries a dtype's raw elements (the blocks' bytes for quantized dtypes). */
export type HostArray<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends QuantDType | 'fp8'
      ? Uint8Array
      : Uint16Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → bf16 bits, round to nearest even (NaN stays NaN). */
export function toBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i];
    const bits = u32[0];
    if ((bits & 0x7fffffff) > 0x7f800000) {
      out[i] = (bits >>> 16) | 0x40;
    } else {
      out[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

export function fromBf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o32[i] = bits[i] << 16;
  return out;
}

/** One f32 value (a number rounded to f32 first) → IEEE half bits, round to nearest even, overflow to infinity. */
export function f16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** IEEE half bits → its value (exact). */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f32 → IEEE half bits, round to nearest even, overflow to infinity. */
export function toF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16Bits(values[i]);
  return out;
}

export function fromF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16Value(bits[i]);
  return out;
}

/** One value → fp8 e4m3 bits: round to nearest even, saturating at ±448, NaN stays NaN (as native/fp8_e4m3.h). */
export function fp8Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 24) & 0x80;
  const a = x & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7f;
  if (a >= 0x43e00000) return sign | 0x7e;
  f32[0] = Math.abs(f32[0]);
  if (a < 0x3c800000) {
    // subnormal: multiples of 2^-9; |x|·512 < 8 is exact, then round half to even
    const s = f32[0] * 512;
    const r = Math.round(s);
    return sign | (r - s === 0.5 && r % 2 === 1 ? r - 1 : r);
  }
  const rounded = (a + 0x7ffff + ((a >>> 20) & 1)) >>> 0;
  return sign | Math.min(0x7e, (rounded >>> 20) - (120 << 3));
}

/** fp8 e4m3 bits → its value (exact). */
export function fp8Value(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >>> 3) & 0xf;
  const m = b & 7;
  if (e === 0xf && m === 7) return NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (1 + m / 8) * 2 ** (e - 7);
}

export function toFp8(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = fp8Bits(values[i]);
  return out;
}

export function fromFp8(bits: Uint8Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fp8Value(bits[i]);
  return out;
}

/** Converts f32 values to the raw host representation of `dtype` (quantizing is src/quant's job). */
export function encode(values: ArrayLike<number>, dtype: DType): Float32Array | Int32Array | Uint16Array | Uint8Array {
  switch (dtype) {
    case 'f32':
      return values instanceof Float32Array ? values : Float32Array.from(values);
    case 'bf16':
      return toBf16(values);
    case 'f16':
      return toF16(values);
    case 'fp8':
      return toFp8(values);
    case 'i32':
      return values instanceof Int32Array ? values : Int32Array.from(values);
    default:
      throw new Error(`encode: ${dtype} takes the blocks' bytes (quantize with src/quant first)`);
  }
}
