/**
 * Child of `sqlite-storage.test.ts`: opens the SQLite store at argv[2], prints one JSON line
 * (`{"event":"open"}`, or `{"event":"refused","code":…}`) and keeps it open until killed.
 */
import { SottoError } from '../../src/errors.js';
import { openSqliteStorage } from '../../src/node/index.js';

const path = process.argv[2]!;
try {
  await openSqliteStorage(path);
  console.log(JSON.stringify({ event: 'open' }));
  setInterval(() => undefined, 60_000);
} catch (err) {
  console.log(JSON.stringify({ event: 'refused', code: SottoError.is(err) ? err.code : String(err) }));
  process.exit(0);
}
