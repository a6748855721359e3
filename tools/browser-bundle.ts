import { build } from 'esbuild';

/**
 * Bundles `entry` for the browser platform the way an app's bundler would, and returns the
 * problems that would stop it from loading in a browser: Node built-ins, native addons, or a
 * bundling error. An empty list means the entry is browser-safe.
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
          name: 'forbid-node',
          setup(b) {
            b.onResolve({ filter: /^node:|^(fs|path|os|crypto|child_process|net|tls|http|https|stream|worker_threads|zlib|module|url|util|buffer|events)$/ }, (args) => {
              problems.push(`${args.importer} imports Node built-in '${args.path}'`);
              return { path: args.path, external: true };
            });
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
