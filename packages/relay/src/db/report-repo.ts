import { asc, count, eq, gt } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { reports } from './schema.js';

export interface ReportRow {
  id: number;
  reporterId: string;
  reportedId: string;
  reason: string;
  evidence: Uint8Array | null;
  createdAt: number;
}

/**
 * Abuse reports: reporter, reported account, reason and evidence the reporter chose to reveal.
 * @example
 * const id = new ReportRepo(db).add({ reporterId, reportedId, reason: 'spam', evidence: null, createdAt: Date.now() });
 */
export class ReportRepo {
  constructor(private readonly db: RelayDb) {}

  add(r: Omit<ReportRow, 'id'>): number {
    const row = this.db.insert(reports).values({ ...r, evidence: r.evidence === null ? null : Buffer.from(r.evidence) })
      .returning({ id: reports.id }).get();
    return row.id;
  }

  list(limit = 1000): ReportRow[] {
    return this.db.select().from(reports).orderBy(asc(reports.id)).limit(limit).all();
  }

  /** Reports with an id above `afterId`, oldest first. */
  page(afterId: number, limit: number): ReportRow[] {
    return this.db.select().from(reports).where(gt(reports.id, afterId)).orderBy(asc(reports.id)).limit(limit).all();
  }

  /** How many reports name `accountId` as the reported account. */
  countAbout(accountId: string): number {
    return this.db.select({ n: count() }).from(reports).where(eq(reports.reportedId, accountId)).get()?.n ?? 0;
  }
}
