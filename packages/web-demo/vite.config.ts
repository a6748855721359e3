import { defineConfig } from 'vite';

/**
 * The web app is built from the workspace's TypeScript sources (`sotto-source`), for browsers.
 * `npm start` builds it into dist/, which the relay serves with `--web-root`.
 */
export default defineConfig({
  resolve: { conditions: ['sotto-source', 'browser'] },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // libsodium (with its WebAssembly inlined) and ML-KEM are most of the bundle
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 2048 },
});
