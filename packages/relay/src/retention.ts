import type { BlobStore } from './blob-store.js';
import { AccountRepo } from './db/account-repo.js';
import { BlobRepo } from './db/blob-repo.js';
import type { OpenDatabase } from './db/database.js';
import { EnvelopeRepo } from './db/envelope-repo.js';
import { RecoveryRepo } from './db/recovery-repo.js';
import { UploadRepo } from './db/upload-repo.js';

/** File name of the SQLite database inside the data directory. */
export const DATABASE_FILE = 'relay.sqlite';
/** Directory of attachment blobs inside the data directory. */
export const BLOB_DIR = 'blobs';

const DAY_MS = 86_400_000;

export interface RetentionResult {
  envelopes: number;
  blobs: number;
  /** Expired link tokens and recovery tokens deleted. */
  tokens: number;
  /** Unfinished resumable uploads removed: expired, or left without their row (account deleted). */
  uploads: number;
}

/**
 * Applies retention at `now` (injected clock): deletes envelopes older than `retentionDays`
 * that were never acknowledged (pass the running relay's `envelopes` repository, if any),
 * attachment blobs past their expiry (metadata first, then the file), unfinished resumable
 * uploads past theirs (and upload files no upload row names), and expired link tokens and
 * recovery tokens (WebSocket tickets live in memory and expire there).
 *
 * @example
 * const result = await runRetention({ database, blobs, retentionDays: 30, now: Date.now() });
 */
export async function runRetention(args: { database: OpenDatabase; blobs: BlobStore; retentionDays: number; now: number; envelopes?: EnvelopeRepo }): Promise<RetentionResult> {
  const { database, blobs, now } = args;
  // A running relay's young envelopes (held as batch rows, see EnvelopeRepo) move to the queue
  // table first, so that they expire like the rest. Without the running relay's repository
  // (the `gc` command), only the table is looked at: batch rows are spilled when it starts.
  const envelopeRepo = args.envelopes ?? new EnvelopeRepo(database.db);
  args.envelopes?.spill(true);
  const cutoff = now - args.retentionDays * DAY_MS;
  const blobRepo = new BlobRepo(database.db);
  const uploadRepo = new UploadRepo(database.db);
  let expiredBlobs: string[] = [];
  let expiredUploads: string[] = [];
  let envelopes = 0;
  let tokens = 0;
  database.sqlite.transaction(() => {
    envelopes = envelopeRepo.expire(cutoff);
    tokens = new AccountRepo(database.db).purgeExpiredTokens(now) + new RecoveryRepo(database.db).purgeExpiredTokens(now);
    expiredBlobs = blobRepo.takeExpired(now, 100_000);
    expiredUploads = uploadRepo.takeExpired(now, 100_000);
  }).immediate();
  for (const id of expiredBlobs) await blobs.delete(id).catch(() => false);
  let uploads = expiredUploads.length;
  for (const id of expiredUploads) await blobs.deleteUpload(id).catch(() => false);
  // files whose row is gone some other way (the account was deleted)
  for (const id of await blobs.uploadIds()) {
    if (uploadRepo.get(id) === undefined && (await blobs.deleteUpload(id).catch(() => false))) uploads++;
  }
  return { envelopes, blobs: expiredBlobs.length, tokens, uploads };
}
