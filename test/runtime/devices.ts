// The devices every runtime test runs on: 'cpu' and 'cuda-sim' always, 'cuda:0' when this machine
// has a GPU (otherwise its tests are registered as skipped, with the reason in their name, so a CI
// log shows what did not run and why).
import { afterAll } from 'vitest';
import { Device } from '../../src/runtime/index.js';

export interface DeviceUnderTest {
  name: 'cpu' | 'cuda-sim' | 'cuda:0';
  /** Name plus skip reason, for describe() titles. */
  label: string;
  /** False when the device runs; the reason when it is skipped. */
  skip: string | false;
}

export function devicesUnderTest(): DeviceUnderTest[] {
  const cuda = Device.cudaStatus();
  const cudaSkip = cuda.count > 0 ? false : `no CUDA device: ${cuda.reason}`;
  return [
    { name: 'cpu', label: 'cpu', skip: false },
    { name: 'cuda-sim', label: 'cuda-sim', skip: false },
    { name: 'cuda:0', label: cudaSkip ? `cuda:0 (skipped: ${cudaSkip})` : 'cuda:0', skip: cudaSkip },
  ];
}

const opened = new Map<string, Device>();

/** Opens a device once per test file; every one is disposed after the file's tests. */
export function device(name: string): Device {
  let d = opened.get(name);
  if (!d) {
    d = Device.open(name as Parameters<typeof Device.open>[0]);
    opened.set(name, d);
  }
  return d;
}

afterAll(() => {
  for (const d of opened.values()) d.dispose();
  opened.clear();
});
