// The C float arithmetic of ggml's reference quantizers, reproduced in JavaScript so that the quantizers
// here produce ggml's bytes bit for bit: every intermediate is rounded to f32 (Math.fround) in the order
// the C source evaluates it (ggml-base is built without FMA contraction, so no fused multiply-adds).
// A double operation followed by one rounding to f32 equals the f32 operation for + − × ÷ and sqrt
// (53 ≥ 2·24 + 2 bits), so fround(a op b) is exact emulation.
import { f16Bits, f16Value } from '../runtime/dtype.js';

export const fr = Math.fround;

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** ggml's nearest_int: round half to even through the 1.5·2^23 trick, including its bit pattern when
 *  |value| ≥ 2^22 (where ggml asserts in debug builds and returns those bits in release builds). */
export function nearestInt(value: number): number {
  f32[0] = value + 12582912;
  return (i32[0] & 0x007fffff) - 0x00400000;
}

/** C's roundf: half away from zero. */
export function roundf(value: number): number {
  return value < 0 ? -Math.floor(-value + 0.5) : Math.floor(value + 0.5);
}

/** GGML_FP32_TO_FP16 then GGML_FP16_TO_FP32: the value a half field holds. */
export function halfRound(value: number): number {
  return f16Value(f16Bits(value));
}

export function readHalf(bytes: Uint8Array, offset: number): number {
  return f16Value(bytes[offset] | (bytes[offset + 1] << 8));
}

export function writeHalf(bytes: Uint8Array, offset: number, value: number): void {
  const h = f16Bits(value);
  bytes[offset] = h & 0xff;
  bytes[offset + 1] = h >>> 8;
}

/** The arithmetic a dequantizer uses: f64 (the exact value of the block) or f32 like ggml's own. */
export type Rounding = (x: number) => number;
export const exact: Rounding = (x) => x;
