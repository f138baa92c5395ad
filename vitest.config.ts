import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native work is multi-threaded already; one test file at a time keeps timings honest on 2 cores.
    fileParallelism: false,
    // Every cuda-sim launch runs under the simulator's racecheck, memcheck and initcheck (about 2× the
    // simulator's CPU time; README "Tests"). PARALON_SIM_SANITIZE= (empty) turns them off.
    env: { PARALON_SIM_SANITIZE: process.env.PARALON_SIM_SANITIZE ?? 'racecheck,memcheck,initcheck' },
  },
});
