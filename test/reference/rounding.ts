// Round-to-nearest-even into bf16 and f16, computed arithmetically (scale by the unit in the last
// place, round half to even) rather than with the bit tricks of src/runtime/dtype.ts, so the two
// check each other. Results are the rounded values as numbers.

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function roundTo(x: number, mantissaBits: number, minExponent: number, maxFinite: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 may round across a power of two
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, minExponent) - mantissaBits); // subnormals share the smallest ulp
  const r = roundHalfEven(a / ulp) * ulp; // on the magnitude, so −tiny rounds to −0
  return Math.sign(x) * (r > maxFinite ? Infinity : r);
}

/** The f32 value `x` (any number is first rounded to f32) rounded to bf16. */
export function roundBf16(x: number): number {
  return roundTo(Math.fround(x), 7, -126, 3.3895313892515355e38);
}

/** The f32 value `x` rounded to IEEE half (subnormals included, overflow to infinity). */
export function roundF16(x: number): number {
  return roundTo(Math.fround(x), 10, -14, 65504);
}

export type WeightType = 'f32' | 'bf16' | 'f16';

/** Values as a backend sees them once stored in `dtype`. */
export function storedAs(values: ArrayLike<number>, dtype: WeightType): Float64Array {
  const round = dtype === 'bf16' ? roundBf16 : dtype === 'f16' ? roundF16 : Math.fround;
  return Float64Array.from(values, round);
}
