/**
 * `sotto-relay backup <dir>`: a copy of a data directory taken while the relay runs (or not).
 *
 * 1. The database: SQLite's `VACUUM INTO`, which writes a compacted copy of one read
 *    transaction, so the copy is a consistent snapshot whatever the relay commits meanwhile
 *    (the `-wal` file included). It is written under a temporary name and renamed into place
 *    last, fsynced, so a target holding `relay.sqlite` is a complete backup.
 * 2. The attachment blobs the snapshot lists. Blobs are immutable once written and a blob's file
 *    exists before its row is committed, so each one listed can be copied as it is. A file
 *    already in the target with the same size is kept (blob ids are random: the same id is the
 *    same blob), which makes repeated backups into one directory incremental. A listed blob
 *    whose file is gone (expired and collected after the snapshot) is counted, not fatal.
 *
 * The target must not hold a database yet. Restoring is starting a relay on the copy: it moves
 * the young envelopes the snapshot holds into the queue as at any start.
 *
 * @example
 * const result = await backupDataDir('./data', './backup/2026-11-30');
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { syncDir, syncFile } from './blob-store.js';
import { BLOB_DIR, DATABASE_FILE } from './retention.js';

export interface BackupResult {
  /** Size of the database copy. */
  databaseBytes: number;
  /** Blobs copied now, and blobs already in the target. */
  blobsCopied: number;
  blobsKept: number;
  /** Blobs the snapshot lists whose file was gone. */
  blobsMissing: number;
}

/** Why a backup could not start (the CLI exits 2 on these). */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Copies the data directory `dataDir` into `target` (see the module comment). */
export async function backupDataDir(dataDir: string, target: string): Promise<BackupResult> {
  const source = join(dataDir, DATABASE_FILE);
  if (!(await exists(source))) throw new BackupError(`no relay database at ${source}`);
  const copy = join(target, DATABASE_FILE);
  if (await exists(copy)) throw new BackupError(`${copy} exists already: back up into a new directory`);
  await mkdir(join(target, BLOB_DIR), { recursive: true });

  const partial = `${copy}.partial`;
  await rm(partial, { force: true });
  // Read-write (a read-only connection cannot always open a WAL database), but nothing is written
  // to the source: VACUUM INTO only reads it.
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('VACUUM INTO ?').run(partial);
  } finally {
    db.close();
  }
  const snapshot = new Database(partial, { fileMustExist: true, readonly: true });
  let blobIds: { id: string; size: number }[];
  try {
    blobIds = snapshot.prepare('SELECT id, size FROM blobs ORDER BY id').all() as { id: string; size: number }[];
  } finally {
    snapshot.close();
  }

  const result: BackupResult = { databaseBytes: (await stat(partial)).size, blobsCopied: 0, blobsKept: 0, blobsMissing: 0 };
  for (const { id, size } of blobIds) {
    const from = join(dataDir, BLOB_DIR, id);
    const to = join(target, BLOB_DIR, id);
    const have = await stat(to).then((s) => s.size, () => -1);
    if (have === size) {
      result.blobsKept++;
      continue;
    }
    try {
      await copyFile(from, `${to}.partial`, constants.COPYFILE_FICLONE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      result.blobsMissing++;
      continue;
    }
    await syncFile(`${to}.partial`);
    await rename(`${to}.partial`, to);
    result.blobsCopied++;
  }
  await syncDir(join(target, BLOB_DIR));
  // the database last: its presence marks the backup complete
  await syncFile(partial);
  await rename(partial, copy);
  await syncDir(target);
  return result;
}
