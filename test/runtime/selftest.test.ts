// The CUDA execution-model self-tests (native/cuda/selftest.cu): every intrinsic and wrapper of
// common.cuh against its documented behaviour. On cuda-sim they validate the simulator; on cuda:0 the
// same tests validate that the simulator's model matches the hardware. Each self-test is its own
// vitest case, so a failure names the intrinsic and carries the first mismatch.
import { describe, expect, it } from 'vitest';
import { device, devicesUnderTest } from './devices.js';

// Names known up front so that the cases register even where the device is skipped.
const SHARED_TESTS = [
  'warp shuffles',
  'votes and warp reductions',
  '__syncthreads',
  'atomics',
  'ldmatrix',
  'mma_bf16_16816',
  'mma_f16_16816',
  'cp.async',
  'math and conversion intrinsics',
  'stream capture',
];
// The Hopper wrappers (hopper.cuh): always on cuda-sim; on a GPU only compute capability 9 with an
// sm_90a build reports them.
const HOPPER_TESTS = ['wgmma m64n128k16 bf16', 'wgmma m64n128k16 f16', 'TMA 2-D tensor copies', 'wgmma GEMM first-contact check'];
const SIMULATOR_ONLY_TESTS = [
  'simulator: unwritten',
  'simulator: barrier divergence',
  'sanitizers: racecheck',
  "sanitizers: the fused decode merge's last-CTA ticket protocol",
  'sanitizers: memcheck',
  'sanitizers: initcheck',
  'sanitizers: seeded random schedules',
];

for (const dut of devicesUnderTest().filter((d) => d.name !== 'cpu')) {
  describe.skipIf(dut.skip !== false)(`self-tests on ${dut.label}`, () => {
    let cached: { name: string; passed: boolean; detail: string }[] | undefined;
    const results = () => (cached ??= device(dut.name).selfTest());
    const hopper = dut.name === 'cuda-sim' || (dut.skip === false && results().some((r) => r.name.startsWith('wgmma')));
    const expected = [...SHARED_TESTS, ...(hopper ? HOPPER_TESTS : []), ...(dut.name === 'cuda-sim' ? SIMULATOR_ONLY_TESTS : [])];

    it('reports every self-test exactly once', () => {
      const names = results().map((r) => r.name);
      for (const prefix of expected) {
        expect(names.filter((n) => n.startsWith(prefix)), `self-test "${prefix}…"`).toHaveLength(1);
      }
      expect(names).toHaveLength(expected.length);
    });

    for (const prefix of expected) {
      it(prefix, () => {
        const r = results().find((x) => x.name.startsWith(prefix));
        expect(r, `self-test "${prefix}…" missing`).toBeDefined();
        expect(r!.passed, `${r!.name}: ${r!.detail}`).toBe(true);
        expect(r!.detail).toMatch(/^\d+ checks passed$/);
      });
    }

    it('leaves the device usable (a fault inside a self-test is not sticky)', async () => {
      results();
      const dev = device(dut.name);
      const t = dev.tensor(new Float32Array([1.5, -2, 3]), [3]);
      expect(Array.from(await t.read())).toEqual([1.5, -2, 3]);
      t.dispose();
    });
  });
}
