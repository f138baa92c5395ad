// The native quantizer (native/cpu/quantize.cc through quantize) against the TypeScript reference
// (quantizeReference), byte for byte: random rows at scales from f16-subnormal to past f16's range,
// the golden cases, non-finite and boundary values, a multi-threaded run into a poisoned buffer, and
// its argument errors.
import { describe, expect, it } from 'vitest';
import { quantize, quantizeReference } from '../../src/quant/index.js';
import { quantizeNative } from '../../src/runtime/native-quantize.js';
import { addon } from '../../src/runtime/native.js';
import { dtypeBlock, quantDTypes } from '../../src/runtime/dtype.js';
import { Rng } from '../reference/random.js';
import { goldenInputs } from './golden-cases.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// Byte offsets of the f16 fields in a block. A NaN input can make a scale NaN, and the sign of a NaN is
// not specified by JavaScript (V8's Math.max returns x86's negative default NaN): NaN halves compare
// without their sign bit. ggml itself does not propagate NaN the same way, so there is no sign to match.
const halfFields = { q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] } as const;
function unsignedNaNHalves(block: Uint8Array, dtype: (typeof quantDTypes)[number]): Uint8Array {
  const out = block.slice();
  for (const o of halfFields[dtype]) {
    const h = out[o] | (out[o + 1] << 8);
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) out[o + 1] &= 0x7f;
  }
  return out;
}

/** The first differing block, named, so a failure says where (whole-buffer hex diffs are unreadable). */
function expectSameBlocks(x: Float32Array, dtype: (typeof quantDTypes)[number], label: string): void {
  const { elements, bytes } = dtypeBlock[dtype];
  const native = quantize(x, dtype);
  const reference = quantizeReference(x, dtype);
  expect(native.length).toBe(reference.length);
  for (let b = 0; b < x.length / elements; b++) {
    const n = hex(unsignedNaNHalves(native.subarray(b * bytes, (b + 1) * bytes), dtype));
    const r = hex(unsignedNaNHalves(reference.subarray(b * bytes, (b + 1) * bytes), dtype));
    if (n !== r) expect(`${label} block ${b}: ${n}`).toBe(`${label} block ${b}: ${r}`);
  }
}

// Rows of values where the quantizers' special cases live (each 256 long, so whole blocks of every type).
function adversarialRows(): { name: string; values: Float32Array }[] {
  const rng = new Rng('native quant adversarial');
  const row = (fill: (i: number) => number) => Float32Array.from({ length: 256 }, (_, i) => fill(i));
  return [
    { name: 'NaN in one sub-block', values: row((i) => (i === 40 ? NaN : rng.normal())) },
    { name: '+Infinity', values: row((i) => (i === 3 ? Infinity : rng.normal())) },
    { name: '-Infinity', values: row((i) => (i === 200 ? -Infinity : rng.normal())) },
    { name: 'beyond f16 range', values: row(() => 1e6 * rng.normal()) },
    { name: 'f32 extremes', values: row((i) => (i % 2 ? 3.4e38 : -3.4e38) * rng.uniform(0.5, 1)) },
    { name: 'f32 subnormals', values: row(() => 1e-40 * rng.normal()) },
    { name: 'negative zeros', values: row((i) => (i % 3 ? -0 : 0)) },
    { name: 'one value per sub-block', values: row((i) => (i % 16 === 0 ? rng.normal() : 0)) },
    { name: 'all equal negative', values: row(() => -2.5) },
    { name: 'sign alternating, huge ratio', values: row((i) => (i % 2 ? 1e4 : -1e-4) * rng.uniform(0.9, 1.1)) },
    { name: 'integers on level grid', values: row((i) => (i % 63) - 31) },
    { name: 'f16 subnormal scale boundary', values: row(() => 6.1e-5 * 127 * rng.uniform(-1, 1)) },
  ];
}

describe.each(quantDTypes)('native %s', (dtype) => {
  const { elements, bytes } = dtypeBlock[dtype];

  it.each([1e-9, 1e-5, 0.02, 1, 37, 5e3, 7e4])('matches the reference on random rows at scale %s', (scale) => {
    const rng = new Rng(`native ${dtype} ${scale}`);
    const x = rng.normals(3 * 256, scale);
    for (let i = 0; i < x.length; i += 29) x[i] *= rng.uniform(-8, 8);  // outliers and sign flips
    expectSameBlocks(x, dtype, `scale ${scale}`);
  });

  it('matches the reference on the golden cases and adversarial rows', () => {
    for (const { name, values } of [...goldenInputs(), ...adversarialRows()]) expectSameBlocks(values, dtype, name);
  });

  it('fills a poisoned buffer across threads with the reference bytes', () => {
    const blocks = dtype === 'q8_0' ? 1031 : 203;  // awkward counts, enough for several threads
    const x = new Rng(`native ${dtype} threads`).normals(blocks * elements, 0.05);
    const out = new Uint8Array(blocks * bytes).fill(0xa5);
    expect(quantizeNative(x, dtype, out)).toBe(out);
    expect(hex(out)).toBe(hex(quantizeReference(x, dtype)));
  });

  it('refuses partial blocks and wrong output sizes by name', () => {
    expect(() => quantizeNative(new Float32Array(elements - 1), dtype)).toThrow(`quantize ${dtype}: ${elements - 1} values are not whole blocks of ${elements}`);
    expect(() => quantizeNative(new Float32Array(elements), dtype, new Uint8Array(bytes + 1))).toThrow(`out has ${bytes + 1} bytes, 1 blocks need ${bytes}`);
    expect(quantizeNative(new Float32Array(0), dtype).length).toBe(0);
  });
});

describe('native quantizer arguments', () => {
  it('refuses unknown dtypes and wrong array types', () => {
    const call = addon.quantizeRows as (...args: unknown[]) => Uint8Array;
    expect(() => call('q4_0', new Float32Array(32))).toThrow("unknown dtype 'q4_0'");
    expect(() => call('q8_0', new Float64Array(32))).toThrow('values must be a Float32Array');
    expect(() => call('q8_0', [1, 2, 3])).toThrow('values must be a Float32Array');
    expect(() => call('q8_0', new Float32Array(32), new Int8Array(34))).toThrow('out must be a Uint8Array');
    expect(() => call(8, new Float32Array(32))).toThrow('expected (dtype: string');
  });
});
