import type Database from 'better-sqlite3';
import type { RelayDb } from './database.js';

/** One device of a deferred fan-out: `[accountId, deviceId, guidIndex]`. */
export type FanoutRecipient = [accountId: string, deviceId: number, guidIndex: number];

/** A multi-recipient send accepted as one row (see `fanouts` in schema.ts). */
export interface FanoutRow {
  id: number;
  guidPrefix: string;
  senderAccountId: string;
  senderDeviceId: number;
  type: string;
  ciphertext: Uint8Array;
  serverTimestamp: number;
  recipients: FanoutRecipient[];
}

const INSERT_SQL = `INSERT INTO fanouts (guid_prefix, sender_account_id, sender_device_id, type, ciphertext, server_timestamp, recipients)
  VALUES (?, ?, ?, ?, ?, ?, ?)`;
const ALL_SQL = `SELECT id, guid_prefix AS guidPrefix, sender_account_id AS senderAccountId, sender_device_id AS senderDeviceId,
  type, ciphertext, server_timestamp AS serverTimestamp, recipients FROM fanouts ORDER BY id`;

/**
 * Deferred fan-outs: a large multi-recipient send is stored here, in one row, by the operation
 * that accepts it, and replaced by its per-device envelope rows in the very next commit. Rows
 * are only ever found here after a stop between those two commits. Raw statements, like the
 * envelope repository's: this is the group send's path.
 *
 * @example
 * const id = repo.accept({ guidPrefix, senderAccountId, senderDeviceId, type: 'senderkey', ciphertext, serverTimestamp, recipients });
 * repo.remove(id); // once its envelopes are inserted, in the same transaction
 */
export class FanoutRepo {
  private readonly insertStmt: Database.Statement<[string, string, number, string, Buffer, number, string]>;
  private readonly removeStmt: Database.Statement<[number]>;
  private readonly allStmt: Database.Statement<[], Omit<FanoutRow, 'recipients'> & { recipients: string }>;

  constructor(db: RelayDb) {
    const sqlite = db.$client;
    this.insertStmt = sqlite.prepare(INSERT_SQL);
    this.removeStmt = sqlite.prepare('DELETE FROM fanouts WHERE id = ?');
    this.allStmt = sqlite.prepare(ALL_SQL);
  }

  /** Stores a fan-out; returns its id. */
  accept(f: Omit<FanoutRow, 'id'>): number {
    const ct = Buffer.from(f.ciphertext.buffer, f.ciphertext.byteOffset, f.ciphertext.byteLength);
    return Number(this.insertStmt.run(f.guidPrefix, f.senderAccountId, f.senderDeviceId, f.type, ct, f.serverTimestamp, JSON.stringify(f.recipients)).lastInsertRowid);
  }

  remove(id: number): void {
    this.removeStmt.run(id);
  }

  /** Every fan-out not yet expanded, oldest first. */
  all(): FanoutRow[] {
    return this.allStmt.all().map((r) => ({ ...r, recipients: JSON.parse(r.recipients) as FanoutRecipient[] }));
  }
}
