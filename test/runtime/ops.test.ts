// Every op on every device against a float64 reference (and, off the cpu, against the cpu's output):
// one table of cases whose names carry their parameters, llama.cpp test-backend-ops style.
import { describe, it } from 'vitest';
import { assertBitExact, assertClose } from '../reference/compare.js';
import { denseCases } from './cases/dense.js';
import { moeCases } from './cases/moe.js';
import { normCases } from './cases/norm.js';
import type { OpCase } from './cases/op_case.js';
import { pagedCases } from './cases/paged.js';
import { quantizedCases } from './cases/quantized.js';
import { device, devicesUnderTest } from './devices.js';

const table: OpCase[] = [...denseCases(), ...quantizedCases(), ...normCases(), ...pagedCases(), ...moeCases()];

// On cuda-sim the op table also runs under a seeded random schedule (lanes of a warp interleaved
// between collectives, sim/sanitizers.h): a fixed seed, so a failure reproduces; try others with
// PARALON_SIM_SCHEDULE_SEED=N. Only this file: random schedules cost ~1.4× the checks alone.
process.env.PARALON_SIM_SCHEDULE_SEED ??= '1';

function check(actual: Float32Array, expected: ArrayLike<number>, tolerance: number, label: string) {
  if (tolerance === 0) assertBitExact(actual, expected, label);
  else assertClose(actual, expected, tolerance, label);
}

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`ops [${dut.label}]`, () => {
    for (const c of table) {
      const title = `${c.name} [${dut.name}]`;
      if (dut.name === 'cuda-sim' && c.heavyForSim) {
        it.skip(`${title} (skipped: too large for the simulator; runs on cpu and cuda)`, () => {});
        continue;
      }
      it(title, async () => {
        const dev = device(dut.name);
        const outputs = await c.run(dev);
        const expected = c.expected();
        const tolerance = (key: string) => (c.exactOutputs?.includes(key) ? 0 : c.tolerance(dev));
        for (const [key, ref] of Object.entries(expected)) check(outputs[key], ref, tolerance(key), `${key} vs reference`);
        if (dut.name !== 'cpu') {
          const cpu = await c.run(device('cpu'));
          for (const key of Object.keys(expected)) check(outputs[key], cpu[key], tolerance(key), `${key} vs cpu`);
        }
      });
    }
  });
}
