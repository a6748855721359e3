import { and, count, eq, gt, lte } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { uploads } from './schema.js';

/** A resumable attachment upload in progress (its bytes so far are in the blob store). */
export interface UploadRow {
  id: string;
  uploaderId: string;
  /** The whole blob's size, declared when the upload was created. */
  size: number;
  /** Bytes received and made durable so far: where the next part starts. */
  received: number;
  createdAt: number;
  expiresAt: number;
}

/**
 * Resumable uploads in progress (`uploads` table; the bytes live in the BlobStore's upload
 * files). A finished upload becomes a `blobs` row and leaves this table.
 * @example
 * uploadsRepo.create({ id, uploaderId, size, received: 0, createdAt: now, expiresAt: now + ttl });
 */
export class UploadRepo {
  constructor(private readonly db: RelayDb) {}

  create(row: UploadRow): void {
    this.db.insert(uploads).values(row).run();
  }

  get(id: string): UploadRow | undefined {
    return this.db.select().from(uploads).where(eq(uploads.id, id)).get();
  }

  setReceived(id: string, received: number): void {
    this.db.update(uploads).set({ received }).where(eq(uploads.id, id)).run();
  }

  /** Removes the upload; false when there was none. */
  remove(id: string): boolean {
    return this.db.delete(uploads).where(eq(uploads.id, id)).run().changes === 1;
  }

  /** Uploads of `uploaderId` not yet expired at `now`. */
  openCount(uploaderId: string, now: number): number {
    return this.db.select({ n: count() }).from(uploads).where(and(eq(uploads.uploaderId, uploaderId), gt(uploads.expiresAt, now))).get()?.n ?? 0;
  }

  /** Removes every upload of `uploaderId` (the account was deleted); returns their ids. */
  takeOf(uploaderId: string): string[] {
    return this.db.delete(uploads).where(eq(uploads.uploaderId, uploaderId)).returning({ id: uploads.id }).all().map((r) => r.id);
  }

  /** Removes and returns the ids of uploads expired at `now`. */
  takeExpired(now: number, limit = 1000): string[] {
    const ids = this.db.select({ id: uploads.id }).from(uploads).where(lte(uploads.expiresAt, now)).limit(limit).all().map((r) => r.id);
    for (const id of ids) this.db.delete(uploads).where(eq(uploads.id, id)).run();
    return ids;
  }
}
