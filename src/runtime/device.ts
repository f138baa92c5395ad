// Devices: the CPU backend, CUDA GPUs and the CUDA simulator behind one interface.
import { addon, type CpuPrecision, type NativeDevice, type NativeMappedFile, type OpName } from './native.js';
import { encode, isQuantized, type DType, type HostArray } from './dtype.js';
import { Tensor } from './tensor.js';
import { DeviceGraph } from './graph.js';

export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}` | 'cuda-sim';

export interface DeviceOptions {
  /** CPU backend only: worker threads (default: one per core). */
  threads?: number;
  /**
   * CPU backend only: 'exact' (default) or 'fast' — bf16-weight matmuls with activations rounded to bf16
   * and AVX512-BF16 dot products, and quantized-weight matmuls of up to 16 rows with activations quantized
   * to int8 blocks as llama.cpp does and integer dot products (AVX512-VNNI or AVX2); where the CPU has
   * none of them it stays exact (see Device.precision).
   */
  precision?: CpuPrecision;
}

export interface CudaStatus {
  /** Number of CUDA devices usable by this build. */
  count: number;
  /** Why there are none, e.g. "no CUDA device (cudaErrorInsufficientDriver: ...)". */
  reason: string;
  /** Whether this build contains the CUDA backend at all. */
  built: boolean;
}

export class Device {
  /** @internal */
  readonly native: NativeDevice;
  readonly name: string;
  readonly description: string;
  /** True when device memory is host memory (cpu): mapped weights are used in place. */
  readonly hostMemory: boolean;
  /** Matmul precision in effect ('fast' only on a CPU device asked for it whose CPU has AVX512-BF16, AVX512-VNNI or AVX2). */
  readonly precision: CpuPrecision;
  #disposed = false;

  private constructor(native: NativeDevice) {
    this.native = native;
    this.name = native.name;
    this.description = native.description;
    this.hostMemory = native.hostMemory;
    this.precision = native.precision;
  }

  /** Opens `cpu`, `cuda:N` (or `cuda`), or `cuda-sim`; `auto` picks the first CUDA device, else the CPU. */
  static open(name: DeviceName | 'auto' = 'cpu', options: DeviceOptions = {}): Device {
    if (name === 'auto') name = Device.cudaStatus().count > 0 ? 'cuda:0' : 'cpu';
    const threads = options.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0) throw new Error('Device: threads must be a non-negative integer');
    const precision = options.precision ?? 'exact';
    if (precision !== 'exact' && precision !== 'fast') throw new Error(`Device: precision must be 'exact' or 'fast', got '${String(precision)}'`);
    return new Device(new addon.Device(name, threads, precision));
  }

  static cudaStatus(): CudaStatus {
    const { count, reason } = addon.cudaDeviceCount();
    return { count, reason, built: addon.build.cuda };
  }

  /** Names of the devices that can be opened here. */
  static available(): string[] {
    const names = ['cpu', 'cuda-sim'];
    const { count } = Device.cudaStatus();
    for (let i = 0; i < count; i++) names.push(`cuda:${i}`);
    return names;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Uninitialised memory: contents are whatever the allocator left. */
  empty<D extends DType = 'f32'>(shape: readonly number[], dtype: D = 'f32' as D): Tensor<D> {
    return new Tensor(this, this.native.alloc(dtype, [...shape]), dtype, shape);
  }

  /**
   * A tensor holding `data`: raw elements of `dtype` (HostArray; the blocks' bytes for a quantized
   * dtype), or plain numbers that are encoded (f32 values rounded to bf16/f16 when dtype is 16-bit).
   */
  tensor<D extends DType = 'f32'>(
    data: HostArray<D> | ArrayLike<number>,
    shape: readonly number[],
    dtype: D = 'f32' as D,
  ): Tensor<D> {
    const raw = isRaw(data, dtype) ? data : encode(data, dtype);
    return this.empty(shape, dtype).write(raw as HostArray<D>);
  }

  /** Memory-maps a file (read-only) to make tensors from byte ranges of it. */
  mapFile(path: string): MappedFile {
    return new MappedFile(this, new addon.MappedFile(path));
  }

  /**
   * Whether this device's backend runs `op` (an op of the contract, e.g. 'matmul') with its weight
   * operand in `dtype` (default f32). An op a backend lacks fails with a clear error when queued;
   * ask first to choose another path.
   */
  supports(op: OpName, dtype: DType = 'f32'): boolean {
    return this.native.supports(op, dtype);
  }

  /** Whether this device records graphs (CUDA devices, the simulator and the CPU): see captureGraph. */
  get supportsGraphs(): boolean {
    return this.native.supportsGraphs();
  }

  /**
   * Records the ops `record` queues as one graph (a CUDA graph; on the CPU, the ops and their arguments,
   * replayed on the device's worker without returning to JavaScript) instead of running them. `inputs` are
   * the step's int32 metadata arrays (token ids, positions, slots, block tables, ...): an op argument
   * that is one of them, or a subarray of one, is read again at every `replay(inputs)`, with every
   * argument check the op made at capture run again on the new values. Any other host array is a
   * constant of the graph. Nothing runs until the first replay. Tensors the ops use stay alive with
   * the graph; reading, writing, sampling and synchronising are refused while recording.
   */
  captureGraph(inputs: readonly Int32Array[], record: () => void): DeviceGraph {
    this.native.beginCapture([...inputs]);
    try {
      record();
    } catch (e) {
      this.native.abortCapture();
      throw e;
    }
    return new DeviceGraph(this.native.endCapture(), inputs.map((a) => a.length));
  }

  /**
   * Hands an eager (non-graph) step's int32 metadata — token ids, positions, slots, q starts, kv
   * lengths, block tables — to the device before the step's ops: a CUDA device uploads it in one
   * copy, and the ops that pass the same values find them there instead of uploading their own. The
   * arrays are copied; nothing happens on host-memory devices or while a graph records.
   */
  stageStep(inputs: readonly Int32Array[]): void {
    this.native.stageStep([...inputs]);
  }

  /** Host-to-device copies of op metadata so far (0 on the CPU); after synchronize() it includes all queued ops. */
  get metadataUploads(): number {
    return this.native.metadataUploads();
  }

  /** Resolves when everything queued so far has run; rejects with the first op error since the last sync. */
  synchronize(): Promise<void> {
    return this.native.synchronize();
  }

  /** Runs the CUDA simulator's intrinsic self-tests (cuda and cuda-sim devices). */
  selfTest(): { name: string; passed: boolean; detail: string }[] {
    return this.native.selfTest();
  }

  /** Drains the stream and stops the device; tensors still alive are freed as they are released. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.native.dispose();
  }

  toString(): string {
    return `Device(${this.name}: ${this.description})`;
  }
}

function isRaw(data: unknown, dtype: DType): boolean {
  if (isQuantized(dtype) || dtype === 'fp8') return data instanceof Uint8Array;
  if (dtype === 'f32') return data instanceof Float32Array;
  if (dtype === 'i32') return data instanceof Int32Array;
  return data instanceof Uint16Array;
}

/** A read-only memory mapping; on host-memory devices its tensors are used in place. */
export class MappedFile {
  readonly path: string;
  readonly size: number;
  readonly #device: Device;
  readonly #native: NativeMappedFile;

  /** @internal */
  constructor(device: Device, native: NativeMappedFile) {
    this.#device = device;
    this.#native = native;
    this.path = native.path;
    this.size = native.size;
  }

  /** A copy of `length` bytes at `offset` (headers and metadata). */
  bytes(offset: number, length: number): Uint8Array {
    return this.#native.bytes(offset, length);
  }

  /** The tensor stored at `byteOffset`: in place on host-memory devices, copied in stream order otherwise. */
  tensor<D extends DType>(byteOffset: number, dtype: D, shape: readonly number[]): Tensor<D> {
    return new Tensor(this.#device, this.#native.tensor(this.#device.native, byteOffset, dtype, [...shape]), dtype, shape);
  }

  /** Drops this handle; tensors made from the file keep their pages mapped until they are released. */
  close(): void {
    this.#native.close();
  }
}
