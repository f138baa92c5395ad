// Timing of queued device work: batches of back-to-back launches between synchronisations, so the
// host round trip does not count, median over batches after a warm-up.
import type { Device } from '../src/runtime/index.js';

export interface Timing {
  /** Median seconds per launch. */
  seconds: number;
  launches: number;
}

export async function timeLaunches(
  device: Device,
  launch: (i: number) => void,
  options: { minBatchSeconds?: number; batches?: number } = {},
): Promise<Timing> {
  const minBatch = options.minBatchSeconds ?? 0.05;
  const batches = options.batches ?? 7;
  // Warm-up, and a first estimate of one launch.
  let t0 = performance.now();
  launch(0);
  await device.synchronize();
  let per = Math.max((performance.now() - t0) / 1000, 1e-6);
  t0 = performance.now();
  launch(1);
  await device.synchronize();
  per = Math.max(Math.min(per, (performance.now() - t0) / 1000), 1e-6);
  const perBatch = Math.max(1, Math.min(2000, Math.ceil(minBatch / per)));
  const samples: number[] = [];
  let n = 2;
  for (let b = 0; b < batches; b++) {
    t0 = performance.now();
    for (let i = 0; i < perBatch; i++) launch(n++);
    await device.synchronize();
    samples.push((performance.now() - t0) / 1000 / perBatch);
  }
  samples.sort((a, b) => a - b);
  return { seconds: samples[Math.floor(samples.length / 2)], launches: n };
}
