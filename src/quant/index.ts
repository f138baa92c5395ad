// Reference quantizers and dequantizers for ggml's Q8_0, Q4_K, Q5_K and Q6_K block formats. The
// quantizers are ggml's quantize_row_*_ref (no importance matrix) and produce its bytes bit for bit;
// the dequantizers give each block's exact values in f64, or ggml's own f32 results (dequantize_row_*)
// with `{ arithmetic: 'ggml-f32' }`. Used by the tests as the float64 reference of the quantized kernels.
// `quantize` runs the native port of these quantizers (native/cpu/quantize.cc, byte-identical, tested
// against quantizeReference); `paralon quantize` uses it.
import { dtypeBlock, type QuantDType } from '../runtime/dtype.js';
import { quantizeNative } from '../runtime/native-quantize.js';
import { exact, fr, type Rounding } from './f32-math.js';
import { dequantizeBlockQ8_0, quantizeBlockQ8_0 } from './q8_0.js';
import { dequantizeBlockQ4_K, quantizeBlockQ4_K } from './q4_k.js';
import { dequantizeBlockQ5_K, quantizeBlockQ5_K } from './q5_k.js';
import { dequantizeBlockQ6_K, quantizeBlockQ6_K } from './q6_k.js';

interface BlockCodec {
  quantize(x: Float32Array, xo: number, out: Uint8Array, oo: number): void;
  dequantize(src: Uint8Array, so: number, y: Float64Array, yo: number, r: Rounding): void;
}

const codecs: Record<QuantDType, BlockCodec> = {
  q8_0: { quantize: quantizeBlockQ8_0, dequantize: dequantizeBlockQ8_0 },
  q4_k: { quantize: quantizeBlockQ4_K, dequantize: dequantizeBlockQ4_K },
  q5_k: { quantize: quantizeBlockQ5_K, dequantize: dequantizeBlockQ5_K },
  q6_k: { quantize: quantizeBlockQ6_K, dequantize: dequantizeBlockQ6_K },
};

/** Quantizes `values` (a whole number of blocks, rows concatenated) to `dtype`'s blocks, natively. */
export function quantize(values: Float32Array, dtype: QuantDType): Uint8Array {
  return quantizeNative(values, dtype);
}

/** `quantize` in TypeScript, one block at a time: the reference the native quantizer is tested against. */
export function quantizeReference(values: Float32Array, dtype: QuantDType): Uint8Array {
  const { elements, bytes } = dtypeBlock[dtype];
  if (values.length % elements !== 0)
    throw new Error(`quantize ${dtype}: ${values.length} values are not whole blocks of ${elements}`);
  const nb = values.length / elements;
  const out = new Uint8Array(nb * bytes);
  const codec = codecs[dtype];
  for (let b = 0; b < nb; b++) codec.quantize(values, b * elements, out, b * bytes);
  return out;
}

export interface DequantizeOptions {
  /** 'f64' (default): each value exactly; 'ggml-f32': rounded step by step as ggml's dequantize_row_*. */
  arithmetic?: 'f64' | 'ggml-f32';
}

/** The values of `dtype` blocks (a whole number of blocks). */
export function dequantize(blocks: Uint8Array, dtype: QuantDType, options: DequantizeOptions = {}): Float64Array {
  const { elements, bytes } = dtypeBlock[dtype];
  if (blocks.length % bytes !== 0)
    throw new Error(`dequantize ${dtype}: ${blocks.length} bytes are not whole blocks of ${bytes}`);
  const nb = blocks.length / bytes;
  const out = new Float64Array(nb * elements);
  const r = options.arithmetic === 'ggml-f32' ? fr : exact;
  const codec = codecs[dtype];
  for (let b = 0; b < nb; b++) codec.dequantize(blocks, b * bytes, out, b * elements, r);
  return out;
}
