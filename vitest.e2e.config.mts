import { defineConfig } from 'vitest/config';

// The end-to-end test (npm run test:e2e): one file, a real code-server and Chromium, run alone.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 360_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
