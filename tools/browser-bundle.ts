import { build } from 'esbuild';

/**
 * Bundles `entry` for the browser platform the way an app's bundler would, and returns the
 * problems that would stop it from loading in a browser: Node built-ins, native addons, or a
 * bundling error. An empty list means the entry is browser-safe.
 *
 * A Node built-in that is not replaced is a bundling error on the browser platform ("could not
 * resolve 'fs'"). Built-ins a package maps away in its `browser` field (libsodium maps `crypto`
 * to nothing for its WebCrypto fallback) are resolved as bundlers do and are not problems.
 */
export async function browserBundleProblems(entry: string): Promise<string[]> {
  const problems: string[] = [];
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      conditions: ['sotto-source', 'browser'],
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'forbid-native',
          setup(b) {
            b.onResolve({ filter: /\.node$/ }, (args) => {
              problems.push(`${args.importer} loads native addon '${args.path}'`);
              return { path: args.path, external: true };
            });
          },
        },
      ],
    });
    for (const input of Object.keys(result.metafile.inputs)) {
      if (/libsignal-client|better-sqlite3|node-gyp-build/.test(input)) {
        problems.push(`bundle includes native-module package file ${input}`);
      }
    }
  } catch (err) {
    problems.push(`bundling failed: ${(err as Error).message}`);
  }
  return problems;
}
