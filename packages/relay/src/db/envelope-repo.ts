import type Database from 'better-sqlite3';
import type { CommitObserver } from './commit-queue.js';
import type { RelayDb } from './database.js';

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

// The send / deliver / ack path runs these for every message, so they are raw better-sqlite3
// statements prepared once: drizzle builds and maps every call through its query builder,
// which profiled at ~10x the cost of executing the statement itself. Column names follow
// schema.ts (`envelopes`); the select list maps them to EnvelopeRow's field names.
const ROW_COLUMNS = `seq, guid, account_id AS accountId, device_id AS deviceId, sender_account_id AS senderAccountId,
  sender_device_id AS senderDeviceId, type, ciphertext, server_timestamp AS serverTimestamp`;
const INSERT_SQL = `INSERT INTO envelopes (guid, account_id, device_id, sender_account_id, sender_device_id, type, ciphertext, server_timestamp)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
const PAGE_SQL = `SELECT ${ROW_COLUMNS} FROM envelopes
  WHERE account_id = ? AND device_id = ? AND seq > ? ORDER BY seq LIMIT ?`;
// One guid per execution: the statement stays prepared whatever the ack's length, and the
// unique index on guid makes each a single lookup.
const ACK_SQL = `DELETE FROM envelopes WHERE guid = ? AND account_id = ? AND device_id = ?
  RETURNING guid, sender_account_id AS senderAccountId, type`;

/** Receives envelopes once their transaction has committed, in queue (`seq`) order. */
export type CommittedListener = (rows: EnvelopeRow[]) => void;

/**
 * The per-device envelope queue. Rows leave only by {@link ack} from the recipient device
 * (or by retention / device removal).
 *
 * Inserts happen inside {@link CommitQueue} operations. As the queue's {@link CommitObserver},
 * the repository journals the rows each transaction inserts and hands them to its
 * {@link onCommitted} listener right after the commit, in `seq` order and before any sender
 * is answered. Rows of an operation that failed (rolled-back savepoint) or of a failed batch
 * are never handed over. This lets the delivery hub push new envelopes straight to connected
 * devices without reading them back, while never pushing anything that is not durable, and
 * without depending on the order in which callers' promise continuations run.
 *
 * @example
 * const [row] = repo.insert([{ guid, accountId, deviceId, senderAccountId, senderDeviceId, type: 'message', ciphertext, serverTimestamp }]);
 * const page = repo.page(accountId, deviceId, 0, 100); // row.seq orders delivery
 */
export class EnvelopeRepo implements CommitObserver {
  /** Called with every committed batch's new rows (the delivery hub). */
  onCommitted: CommittedListener | undefined;
  private journal: EnvelopeRow[] = [];
  private opMark = 0;
  private readonly insertStmt: Database.Statement<[string, string, number, string, number, string, Buffer, number]>;
  private readonly pageStmt: Database.Statement<[string, number, number, number], EnvelopeRow>;
  private readonly ackStmt: Database.Statement<[string, string, number], AckedEnvelope>;
  private readonly dropQueueStmt: Database.Statement<[string, number]>;
  private readonly firstYoungStmt: Database.Statement<[number], { seq: number }>;
  private readonly expireBeforeStmt: Database.Statement<[number, number]>;
  private readonly expireAllStmt: Database.Statement<[number]>;
  private readonly sqlite: Database.Database;

  constructor(db: RelayDb) {
    const sqlite = (this.sqlite = db.$client);
    this.insertStmt = sqlite.prepare(INSERT_SQL);
    this.pageStmt = sqlite.prepare(PAGE_SQL);
    this.ackStmt = sqlite.prepare(ACK_SQL);
    this.dropQueueStmt = sqlite.prepare('DELETE FROM envelopes WHERE account_id = ? AND device_id = ?');
    this.firstYoungStmt = sqlite.prepare('SELECT seq FROM envelopes WHERE server_timestamp >= ? ORDER BY seq LIMIT 1');
    this.expireBeforeStmt = sqlite.prepare('DELETE FROM envelopes WHERE seq < ? AND server_timestamp < ?');
    this.expireAllStmt = sqlite.prepare('DELETE FROM envelopes WHERE server_timestamp < ?');
  }

  /**
   * Inserts the envelopes in order; returns them with their assigned queue `seq`. Must run
   * inside a CommitQueue operation (an insert outside one would never reach the listener).
   */
  insert(rows: NewEnvelope[]): EnvelopeRow[] {
    if (rows.length > 0 && !this.sqlite.inTransaction) throw new Error('envelope insert outside a commit-queue transaction');
    // Positional parameters and one Buffer view per distinct ciphertext: a group send's rows
    // share one ciphertext, so it is wrapped once, not once per device.
    let source: Uint8Array | undefined;
    let ciphertext: Buffer = Buffer.alloc(0);
    const out: EnvelopeRow[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (r.ciphertext !== source) {
        source = r.ciphertext;
        ciphertext = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
      }
      const seq = Number(this.insertStmt.run(r.guid, r.accountId, r.deviceId, r.senderAccountId, r.senderDeviceId, r.type, ciphertext, r.serverTimestamp).lastInsertRowid);
      const row: EnvelopeRow = {
        seq, guid: r.guid, accountId: r.accountId, deviceId: r.deviceId, senderAccountId: r.senderAccountId,
        senderDeviceId: r.senderDeviceId, type: r.type, ciphertext, serverTimestamp: r.serverTimestamp,
      };
      this.journal.push(row);
      out[i] = row;
    }
    return out;
  }

  opStarted(): void {
    this.opMark = this.journal.length;
  }

  opRolledBack(): void {
    this.journal.length = this.opMark;
  }

  committed(): void {
    const rows = this.journal;
    this.journal = [];
    if (rows.length > 0) this.onCommitted?.(rows);
  }

  rolledBack(): void {
    this.journal = [];
  }

  /** Up to `limit` envelopes of one device with `seq > afterSeq`, oldest first. */
  page(accountId: string, deviceId: number, afterSeq: number, limit: number): EnvelopeRow[] {
    return this.pageStmt.all(accountId, deviceId, afterSeq, limit);
  }

  /**
   * Deletes the listed envelopes if (and only if) they are queued for this device. Unknown
   * guids and other devices' guids are ignored; a second ack of the same guid finds nothing.
   */
  ack(accountId: string, deviceId: number, guids: string[]): AckedEnvelope[] {
    const acked: AckedEnvelope[] = [];
    for (const guid of guids) {
      const row = this.ackStmt.get(guid, accountId, deviceId);
      if (row !== undefined) acked.push(row);
    }
    return acked;
  }

  /** Deletes every envelope queued for a device (the device was removed). */
  dropQueue(accountId: string, deviceId: number): number {
    return this.dropQueueStmt.run(accountId, deviceId).changes;
  }

  /**
   * Deletes envelopes whose server timestamp is older than `cutoff`. `seq` grows with time (rows
   * get their timestamp from the clock of the commit that inserts them), so they are the rows
   * before the first one at or after `cutoff`: found by walking `seq` from the oldest, and
   * deleted by `seq` range, with no index on the timestamp. A row older than `cutoff` behind a
   * younger one (a clock set back) waits until the rows before it expire.
   */
  expire(cutoff: number): number {
    const first = this.firstYoungStmt.get(cutoff);
    return first === undefined ? this.expireAllStmt.run(cutoff).changes : this.expireBeforeStmt.run(first.seq, cutoff).changes;
  }
}
