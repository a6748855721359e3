import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['sotto-source'] },
  ssr: { resolve: { conditions: ['sotto-source'] } },
  test: {
    name: 'web-demo',
    include: ['test/**/*.test.ts'],
    // one browser at a time: two Chromiums on two cores slow each other more than they gain
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
