// A typed, shaped region of device memory. Ops enqueue on the device's stream; read() resolves once
// everything queued before it has run. dispose() frees deterministically (in stream order); a
// tensor that is garbage-collected without dispose() is freed the same way by the addon.
import { dtypeByteLength, fromBf16, fromF16, fromFp8, isQuantized, type DType, type HostArray } from './dtype.js';
import type { NativeTensor } from './native.js';
import type { Device } from './device.js';

export class Tensor<D extends DType = DType> {
  /** @internal */
  readonly native: NativeTensor;
  readonly device: Device;
  readonly dtype: D;
  readonly shape: readonly number[];

  /** @internal Tensors are made by Device.empty / Device.tensor / MappedFile.tensor / view. */
  constructor(device: Device, native: NativeTensor, dtype: D, shape: readonly number[]) {
    this.device = device;
    this.native = native;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return dtypeByteLength(this.dtype, this.numel);
  }

  get disposed(): boolean {
    return this.native.disposed;
  }

  /** Raw elements: Float32Array for f32, Int32Array for i32, Uint16Array of bits for bf16/f16, Uint8Array
   *  of bits for fp8, the blocks' bytes (Uint8Array) for quantized dtypes. */
  async read(): Promise<HostArray<D>> {
    const buf = await this.native.read();
    if (isQuantized(this.dtype) || this.dtype === 'fp8') return new Uint8Array(buf) as HostArray<D>;
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(buf) as HostArray<D>;
      case 'i32':
        return new Int32Array(buf) as HostArray<D>;
      default:
        return new Uint16Array(buf) as HostArray<D>;
    }
  }

  /** Values as f32 for the element dtypes (a quantized tensor's blocks go through src/quant's dequantize). */
  async toFloat32(): Promise<Float32Array> {
    if (isQuantized(this.dtype)) throw new Error(`toFloat32: ${this.toString()} is quantized; read() its blocks and dequantize them`);
    const raw = await this.read();
    if (this.dtype === 'bf16') return fromBf16(raw as Uint16Array);
    if (this.dtype === 'f16') return fromF16(raw as Uint16Array);
    if (this.dtype === 'fp8') return fromFp8(raw as Uint8Array);
    return raw instanceof Float32Array ? raw : Float32Array.from(raw);
  }

  /** Copies raw elements (exactly byteLength bytes) to the device; the array may be reused at once. */
  write(data: HostArray<D> | ArrayBufferView): this {
    this.native.write(data);
    return this;
  }

  /** Another shape (and optionally dtype) over the same memory, starting `offset` elements in (whole
   *  blocks for a quantized dtype). */
  view<E extends DType = D>(shape: readonly number[], options: { dtype?: E; offset?: number } = {}): Tensor<E> {
    const dtype = (options.dtype ?? this.dtype) as E;
    const byteOffset = dtypeByteLength(dtype, options.offset ?? 0);
    return new Tensor(this.device, this.native.view([...shape], dtype, byteOffset), dtype, shape);
  }

  dispose(): void {
    this.native.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}[${this.shape.join(', ')}] on ${this.device.name})`;
  }
}
