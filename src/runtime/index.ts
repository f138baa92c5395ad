// Paralon's runtime layer: devices, tensors and the ops. Knows nothing of any model.
export { Device, MappedFile, type DeviceName, type DeviceOptions, type CudaStatus } from './device.js';
export { Tensor } from './tensor.js';
export { DeviceGraph } from './graph.js';
export type { CpuPrecision, OpName } from './native.js';
export {
  type DType,
  type ElementDType,
  type QuantDType,
  dtypeBytes,
  dtypeBlock,
  dtypeByteLength,
  isQuantized,
  quantDTypes,
  toBf16,
  fromBf16,
  toF16,
  fromF16,
  encode,
} from './dtype.js';
export * as ops from './ops.js';
export { ropeFrequencies, type Rope, type RopeScaling, type YarnScaling, type RopeFrequencies } from './rope.js';
export type { KvCache, AttentionBatch, SamplingRow, SampleResult, SampleParamField } from './ops.js';
