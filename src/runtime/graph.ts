// A recorded sequence of ops (a CUDA graph, or the CPU backend's op list) replayed as one launch with new int32 inputs.
import type { NativeGraph } from './native.js';

export class DeviceGraph {
  readonly #native: NativeGraph;
  /** Element counts of the inputs, as captured: every replay passes arrays of these lengths. */
  readonly inputLengths: readonly number[];

  /** @internal */
  constructor(native: NativeGraph, inputLengths: readonly number[]) {
    this.#native = native;
    this.inputLengths = inputLengths;
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /**
   * Queues the graph with `inputs` (same count and lengths as at capture). The arrays are copied and
   * checked now, like the arguments of the ops the graph stands for; a check that fails throws and
   * queues nothing.
   */
  replay(inputs: readonly Int32Array[]): void {
    this.#native.replay([...inputs]);
  }

  /** Frees the graph once queued replays have run; the tensors it kept alive are released. */
  dispose(): void {
    this.#native.dispose();
  }
}
