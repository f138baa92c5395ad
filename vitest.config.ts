import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native work is multi-threaded already; one test file at a time keeps timings honest on 2 cores.
    fileParallelism: false,
  },
});
