import { and, asc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { RelayDb } from './database.js';
import { envelopes } from './schema.js';

/** One queued envelope (ciphertext opaque to the relay). */
export interface EnvelopeRow {
  seq: number;
  guid: string;
  accountId: string;
  deviceId: number;
  senderAccountId: string;
  senderDeviceId: number;
  type: string;
  ciphertext: Uint8Array;
  serverTimestamp: number;
}

export type NewEnvelope = Omit<EnvelopeRow, 'seq'>;

/** What an ack removed: enough to address a delivery receipt, nothing more. */
export interface AckedEnvelope {
  guid: string;
  senderAccountId: string;
  type: string;
}

/**
 * The per-device envelope queue. Rows leave only by {@link ack} from the recipient device
 * (or by retention / device removal).
 *
 * @example
 * repo.insert([{ guid, accountId, deviceId, senderAccountId, senderDeviceId, type: 'message', ciphertext, serverTimestamp }]);
 * const page = repo.page(accountId, deviceId, 0, 100);
 */
export class EnvelopeRepo {
  // Hot-path statements prepared once (building a drizzle query costs more than running it).
  private readonly insertQuery;
  private readonly pageQuery;

  constructor(private readonly db: RelayDb) {
    const p = (name: string) => sql.placeholder(name);
    this.insertQuery = db.insert(envelopes).values({
      guid: p('guid'), accountId: p('accountId'), deviceId: p('deviceId'), senderAccountId: p('senderAccountId'),
      senderDeviceId: p('senderDeviceId'), type: p('type'), ciphertext: p('ciphertext'), serverTimestamp: p('serverTimestamp'),
    }).prepare();
    this.pageQuery = db.select().from(envelopes)
      .where(and(eq(envelopes.accountId, p('a')), eq(envelopes.deviceId, p('d')), gt(envelopes.seq, p('after'))))
      .orderBy(asc(envelopes.seq)).limit(p('limit')).prepare();
  }

  insert(rows: NewEnvelope[]): void {
    for (const r of rows) this.insertQuery.run({ ...r, ciphertext: Buffer.from(r.ciphertext.buffer, r.ciphertext.byteOffset, r.ciphertext.byteLength) });
  }

  /** Up to `limit` envelopes of one device with `seq > afterSeq`, oldest first. */
  page(accountId: string, deviceId: number, afterSeq: number, limit: number): EnvelopeRow[] {
    return this.pageQuery.all({ a: accountId, d: deviceId, after: afterSeq, limit });
  }

  /**
   * Deletes the listed envelopes if (and only if) they are queued for this device. Unknown
   * guids and other devices' guids are ignored; a second ack of the same guid finds nothing.
   */
  ack(accountId: string, deviceId: number, guids: string[]): AckedEnvelope[] {
    if (guids.length === 0) return [];
    return this.db.delete(envelopes)
      .where(and(eq(envelopes.accountId, accountId), eq(envelopes.deviceId, deviceId), inArray(envelopes.guid, guids)))
      .returning({ guid: envelopes.guid, senderAccountId: envelopes.senderAccountId, type: envelopes.type })
      .all();
  }

  /** Deletes envelopes whose server timestamp is older than `cutoff`. */
  expire(cutoff: number): number {
    return this.db.delete(envelopes).where(lt(envelopes.serverTimestamp, cutoff)).run().changes;
  }
}
