// Comparing a backend's output with a float64 reference.
//
// The metric is the normalised max error, max|actual − expected| / max|expected| — one number per
// output that is scale-free, blind to cancellation in single elements, and fails on any NaN or
// infinity the reference does not have. nmse() (llama.cpp test-backend-ops' metric) is reported
// alongside it in failure messages.

/** Tolerances (normalised max error) by what the backend is allowed to round. */
export const TOLERANCE = {
  /** Pure data movement (embedding, kvWrite): bit-exact. */
  exact: 0,
  /** Elementwise f32 math (swiglu): a few f32 ulps of the largest value. */
  elementwise: 1e-6,
  /**
   * f32 accumulation over up to a few thousand terms (matmul, rmsnorm, attention). References are
   * computed from the same rounded bf16/f16 weights and bf16 K/V the backend reads, so 16-bit
   * storage needs no looser bound.
   */
  f32: 1e-5,
  /**
   * A backend that rounds activations to the weights' 16-bit type (the CUDA tensor-core prefill
   * matmul rounds x; the tensor-core prefill attention rounds Q and P to the bf16 of its cache): a
   * few units of that type's roundoff (bf16 2^−9, f16 2^−12).
   */
  roundedActivations: { bf16: 1e-2, f16: 2e-3 },
} as const;

export interface Comparison {
  /** max|a − e| / max|e| (Infinity when `actual` has a NaN/Inf the reference has not). */
  maxRel: number;
  nmse: number;
  worstIndex: number;
  actual: number;
  expected: number;
}

export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>): Comparison {
  if (actual.length !== expected.length)
    throw new Error(`length mismatch: actual ${actual.length}, expected ${expected.length}`);
  let maxRef = 0;
  let maxErr = 0;
  let worst = -1;
  let errSq = 0;
  let refSq = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (Number.isFinite(e)) maxRef = Math.max(maxRef, Math.abs(e));
    const err = Object.is(a, e) ? 0 : Number.isFinite(a - e) ? Math.abs(a - e) : Infinity;
    if (worst < 0 || err > maxErr) {
      maxErr = err;
      worst = i;
    }
    errSq += err * err;
    refSq += Number.isFinite(e) ? e * e : 0;
  }
  const maxRel = maxErr === 0 ? 0 : maxRef === 0 ? Infinity : maxErr / maxRef;
  return {
    maxRel,
    nmse: errSq === 0 ? 0 : refSq === 0 ? Infinity : errSq / refSq,
    worstIndex: worst,
    actual: worst >= 0 ? actual[worst] : NaN,
    expected: worst >= 0 ? expected[worst] : NaN,
  };
}

/** Throws a descriptive error when the normalised max error exceeds `tolerance`. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label = 'output'): Comparison {
  const c = compare(actual, expected);
  if (!(c.maxRel <= tolerance)) {
    throw new Error(
      `${label}: max error ${c.maxRel.toExponential(3)} (nmse ${c.nmse.toExponential(3)}) exceeds ` +
        `${tolerance.toExponential(1)}; worst at [${c.worstIndex}]: got ${c.actual}, expected ${c.expected}`,
    );
  }
  return c;
}

/** Throws unless the two arrays are bit-identical (NaNs with the same payload count as equal). */
export function assertBitExact(actual: ArrayLike<number>, expected: ArrayLike<number>, label = 'output'): void {
  if (actual.length !== expected.length)
    throw new Error(`${label}: length mismatch: actual ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i])))
      throw new Error(`${label}: element [${i}] is ${actual[i]}, expected ${expected[i]}`);
  }
}
