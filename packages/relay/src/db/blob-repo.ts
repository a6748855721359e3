import { eq, lte } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { blobs } from './schema.js';

export interface BlobRow {
  id: string;
  uploaderId: string;
  size: number;
  createdAt: number;
  expiresAt: number;
}

/**
 * Metadata of attachment blobs (the bytes live in the BlobStore on disk).
 * @example
 * blobsRepo.add({ id, uploaderId, size, createdAt: now, expiresAt: now + ttl });
 */
export class BlobRepo {
  constructor(private readonly db: RelayDb) {}

  add(row: BlobRow): void {
    this.db.insert(blobs).values(row).run();
  }

  get(id: string): BlobRow | undefined {
    return this.db.select().from(blobs).where(eq(blobs.id, id)).get();
  }

  /** Sets the blob's expiry (retention deletes it from then on); false when there is no such blob. */
  setExpiry(id: string, expiresAt: number): boolean {
    return this.db.update(blobs).set({ expiresAt }).where(eq(blobs.id, id)).run().changes === 1;
  }

  /** Removes and returns the ids of blobs expired at `now`. */
  takeExpired(now: number, limit = 1000): string[] {
    const ids = this.db.select({ id: blobs.id }).from(blobs).where(lte(blobs.expiresAt, now)).limit(limit).all().map((r) => r.id);
    for (const id of ids) this.db.delete(blobs).where(eq(blobs.id, id)).run();
    return ids;
  }
}
