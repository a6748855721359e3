import { copyFileSync, existsSync } from 'node:fs';

/**
 * Copies what a kill at this instant leaves of the SQLite store at `path` (the database, its WAL
 * and its commit journal) to `copy`, while the store stays open; returns `copy`.
 * @example
 * const image = copyCrashImage(path, join(dir, 'image.db'));
 */
export function copyCrashImage(path: string, copy: string): string {
  for (const suffix of ['', '-wal', '-pending']) if (existsSync(path + suffix)) copyFileSync(path + suffix, copy + suffix);
  return copy;
}
