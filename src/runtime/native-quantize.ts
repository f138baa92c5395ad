// The native block quantizer (native/cpu/quantize.cc, the addon's quantizeRows): ggml's reference
// quantizers, byte-identical to src/quant's TypeScript ones and far faster; used by `paralon quantize`.
import type { QuantDType } from './dtype.js';
import { addon } from './native.js';

/** Quantizes `values` (a whole number of `dtype` blocks) on all cores; fills `out` when given. */
export function quantizeNative(values: Float32Array, dtype: QuantDType, out?: Uint8Array): Uint8Array {
  return addon.quantizeRows(dtype, values, out);
}
