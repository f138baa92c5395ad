// fp8 e4m3 conversions (src/runtime/dtype.ts, the twin of native/fp8_e4m3.h that the kvWrite tests check
// the kernels against): every one of the 256 codes, ties between neighbours, saturation and NaN.
import { describe, expect, it } from 'vitest';
import { fp8Bits, fp8Value } from '../../src/runtime/dtype.js';

// e4m3 by definition, in f64: bias 7, subnormals m·2^-9, 0x7F/0xFF NaN.
function definition(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return sign * (e === 0 ? m / 8 : 1 + m / 8) * 2 ** ((e === 0 ? 1 : e) - 7);
}

describe('fp8 e4m3', () => {
  it('decodes every code exactly and encodes every finite value back to its code', () => {
    for (let b = 0; b < 256; b++) {
      const v = definition(b);
      if (Number.isNaN(v)) {
        expect(fp8Value(b)).toBeNaN();
        continue;
      }
      expect(fp8Value(b)).toBe(v);
      expect(fp8Bits(v) & 0x7f, `code ${b}`).toBe(b & 0x7f); // −0 and +0 both keep their sign bit below
      if (v !== 0) expect(fp8Bits(v)).toBe(b);
    }
  });

  it('rounds to the nearest code, ties to the even one', () => {
    const finite = [...Array(127).keys()].map(definition); // 0 .. 448, increasing
    for (let b = 0; b + 1 < finite.length; b++) {
      const [lo, hi] = [finite[b], finite[b + 1]];
      const mid = (lo + hi) / 2;
      expect(fp8Bits(mid), `tie ${lo}..${hi}`).toBe(b % 2 === 0 ? b : b + 1);
      expect(fp8Bits(mid + (hi - lo) / 8)).toBe(b + 1);
      expect(fp8Bits(mid - (hi - lo) / 8)).toBe(b);
      expect(fp8Bits(-(mid + (hi - lo) / 8))).toBe(0x80 | (b + 1));
    }
  });

  it('saturates at ±448 (infinity included), flushes below half the smallest step to zero, keeps NaN', () => {
    for (const x of [448, 449, 480, 1e6, Infinity]) {
      expect(fp8Bits(x)).toBe(0x7e);
      expect(fp8Bits(-x)).toBe(0xfe);
    }
    expect(fp8Value(0x7e)).toBe(448);
    expect(fp8Bits(2 ** -10)).toBe(0); // the tie between 0 and 2^-9 goes to even (0)
    expect(fp8Bits(2 ** -10 * 1.01)).toBe(1);
    expect(fp8Bits(NaN) & 0x7f).toBe(0x7f);
  });
});
