import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['sotto-source'] },
  ssr: { resolve: { conditions: ['sotto-source'] } },
  test: {
    name: 'web-demo',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
