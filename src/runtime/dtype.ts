// Element types and the host-side conversions to and from the 16-bit float formats.

export type DType = 'f32' | 'bf16' | 'f16' | 'i32';

export const dtypeBytes: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4 };

/** The host array type that carries a dtype's raw elements. */
export type HostArray<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint16Array;

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

/** f32 → IEEE half bits, round to nearest even, overflow to infinity. */
export function toF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (h & 1))) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    out[i] = sign | h;
  }
  return out;
}

export function fromF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Converts f32 values to the raw host representation of `dtype`. */
export function encode(values: ArrayLike<number>, dtype: DType): Float32Array | Int32Array | Uint16Array {
  switch (dtype) {
    case 'f32':
      return values instanceof Float32Array ? values : Float32Array.from(values);
    case 'bf16':
      return toBf16(values);
    case 'f16':
      return toF16(values);
    case 'i32':
      return values instanceof Int32Array ? values : Int32Array.from(values);
  }
}
