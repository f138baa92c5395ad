// The quantizers (src/quant: the TypeScript reference and `quantize`, the native port) and dequantizers
// against llama.cpp's own, bit for bit (golden vectors from bench/quant-golden.ts), plus round-trip error
// bounds on random data.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantize, quantize, quantizeReference } from '../../src/quant/index.js';
import { dtypeBlock, quantDTypes, type QuantDType } from '../../src/runtime/dtype.js';
import { Rng } from '../reference/random.js';
import { goldenInputs } from './golden-cases.js';

interface Golden {
  rows: string[];
  values: string;
  formats: Record<QuantDType, { blocks: string; dequantized: string }>;
}

const golden = JSON.parse(readFileSync(new URL('./fixtures/ggml-golden.json', import.meta.url), 'utf8')) as Golden;
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const floats = (s: string) => {
  const b = bytes(s);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const values = floats(golden.values);
const ROW = 256;

describe('golden inputs', () => {
  it('the fixture holds the inputs golden-cases.ts generates', () => {
    const inputs = goldenInputs();
    expect(golden.rows).toEqual(inputs.map((c) => c.name));
    inputs.forEach((c, i) => expect(values.subarray(i * ROW, (i + 1) * ROW)).toEqual(c.values));
  });
});

describe.each(quantDTypes)('%s', (dtype) => {
  const { elements, bytes: blockBytes } = dtypeBlock[dtype];
  const rowBytes = (ROW / elements) * blockBytes;
  const ggmlBlocks = bytes(golden.formats[dtype].blocks);
  const ggmlValues = floats(golden.formats[dtype].dequantized);

  const quantizers = { native: quantize, reference: quantizeReference };
  it.each(golden.rows.flatMap((name, i) => (['native', 'reference'] as const).map((q) => [q, name, i] as const)))(
    '%s quantizes "%s" to ggml’s bytes',
    (q, _name, i) => {
      const ours = quantizers[q](values.subarray(i * ROW, (i + 1) * ROW), dtype);
      expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(ggmlBlocks.subarray(i * rowBytes, (i + 1) * rowBytes)).toString('hex'));
    },
  );

  it('dequantizes ggml’s blocks to ggml’s f32 values bit for bit, and f64 within f32 rounding', () => {
    const f32 = dequantize(ggmlBlocks, dtype, { arithmetic: 'ggml-f32' });
    expect(Float32Array.from(f32)).toEqual(ggmlValues);
    const f64 = dequantize(ggmlBlocks, dtype);
    for (let i = 0; i < f64.length; i++) expect(Math.abs(f64[i] - ggmlValues[i])).toBeLessThanOrEqual(2 ** -22 * Math.abs(f64[i]) + 1e-30);
  });

  it('round trips random rows within the format’s error bound', () => {
    // Relative RMS error on normal data: Q8_0 ≈ 0.5 %, Q6_K ≈ 2 %, Q5_K ≈ 3.5 %, Q4_K ≈ 7 %.
    const bound: Record<QuantDType, number> = { q8_0: 0.008, q6_k: 0.025, q5_k: 0.045, q4_k: 0.09 };
    const x = new Rng(`round trip ${dtype}`).normals(7 * ROW);
    const y = dequantize(quantize(x, dtype), dtype);
    let err = 0;
    let norm = 0;
    for (let i = 0; i < x.length; i++) {
      err += (x[i] - y[i]) ** 2;
      norm += x[i] ** 2;
    }
    expect(Math.sqrt(err / norm)).toBeLessThan(bound[dtype]);
  });

  it('refuses partial blocks by name', () => {
    expect(() => quantize(new Float32Array(elements + 1), dtype)).toThrow(`quantize ${dtype}`);
    expect(() => quantizeReference(new Float32Array(elements + 1), dtype)).toThrow(`quantize ${dtype}`);
    expect(() => dequantize(new Uint8Array(blockBytes - 1), dtype)).toThrow(`dequantize ${dtype}`);
  });
});
