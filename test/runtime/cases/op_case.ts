// One row of the op table (llama.cpp test-backend-ops style): a name built from the parameters, a
// run on a device that returns the outputs, the float64 reference for them and the tolerance.
import type { Device } from '../../../src/runtime/index.js';

export type Outputs = Record<string, Float32Array>;

export interface OpCase {
  /** e.g. "matmul(w=bf16,M=17,N=257,K=1001,residual=alias)" */
  name: string;
  /**
   * Too slow for the simulator, which runs every CUDA thread on the host: registered as skipped on
   * cuda-sim (still run on cpu and real CUDA). Cases are sized so that this is rare.
   */
  heavyForSim?: boolean;
  /** Outputs that must match bit for bit whatever the tolerance (indices such as chosen expert ids). */
  exactOutputs?: readonly string[];
  /** Runs the op on `device` with poisoned outputs; rejects on an out-of-bounds write. */
  run(device: Device): Promise<Outputs>;
  /** The reference for every output of run() (computed once). */
  expected(): Record<string, Float64Array>;
  /** Normalised max error allowed on `device` (0: bit-exact). */
  tolerance(device: Device): number;
}

/** "op(a=1,b=x)" from an ordered parameter list. */
export function caseName(op: string, params: Record<string, string | number | boolean>): string {
  return `${op}(${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(',')})`;
}

/** Memoises a function of no arguments (inputs and references are built once per case). */
export function once<T>(make: () => T): () => T {
  let value: T | undefined;
  let done = false;
  return () => {
    if (!done) {
      value = make();
      done = true;
    }
    return value as T;
  };
}

/** True for the CUDA backends (real or simulated), whose kernels may take other numeric paths. */
export function isCuda(device: Device): boolean {
  return device.name.startsWith('cuda');
}
