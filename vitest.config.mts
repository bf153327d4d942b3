import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dist/ is built once for the tests that run the bundles (worker, extension).
    globalSetup: ['test/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // onnxruntime-node is a native addon: forks isolate it better than worker threads.
    pool: 'forks',
  },
});
