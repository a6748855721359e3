import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['sotto-source'] },
  ssr: { resolve: { conditions: ['sotto-source'] } },
  test: {
    name: 'client-sdk',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // two workers on the 2-core machine: these tests wait on sockets and disk as much as on the CPU
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
