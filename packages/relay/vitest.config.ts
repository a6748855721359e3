import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['sotto-source'] },
  ssr: { resolve: { conditions: ['sotto-source'] } },
  test: {
    name: 'relay',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
