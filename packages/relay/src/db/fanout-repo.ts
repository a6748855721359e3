import type Database from 'better-sqlite3';
import { decodeRecipientList, encodeRecipientList, MAX_SEND_DEVICES, type MultiRecipientEntry } from '@sotto/protocol';
import type { RelayDb } from './database.js';

/** A multi-recipient send accepted as one row (see `fanouts` in schema.ts). */
export interface FanoutRow {
  id: number;
  guidPrefix: string;
  senderAccountId: string;
  senderDeviceId: number;
  type: string;
  ciphertext: Uint8Array;
  serverTimestamp: number;
  /** Every account the send named, in guid order. */
  recipients: readonly MultiRecipientEntry[];
  /** Accounts of `recipients` whose devices get nothing (they block the sender). */
  skipped: readonly string[];
}

const INSERT_SQL = `INSERT INTO fanouts (guid_prefix, sender_account_id, sender_device_id, type, ciphertext, server_timestamp, recipients, skipped)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
const ALL_SQL = `SELECT id, guid_prefix AS guidPrefix, sender_account_id AS senderAccountId, sender_device_id AS senderDeviceId,
  type, ciphertext, server_timestamp AS serverTimestamp, recipients, skipped FROM fanouts ORDER BY id`;

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Deferred fan-outs: a large multi-recipient send is stored here, in one row, by the operation
 * that accepts it, and replaced by its per-device envelope rows in the very next commit. Rows
 * are only ever found here after a stop between those two commits. The recipient list is kept
 * as the protocol packs it (about 30 bytes per account). Raw statements, like the envelope
 * repository's: this is the group send's path.
 *
 * @example
 * const id = repo.accept({ guidPrefix, senderAccountId, senderDeviceId, type: 'senderkey', ciphertext, serverTimestamp, recipients, skipped: [] });
 * repo.remove(id); // once its envelopes are inserted, in the same transaction
 */
export class FanoutRepo {
  private readonly insertStmt: Database.Statement<[string, string, number, string, Buffer, number, Buffer, string]>;
  private readonly removeStmt: Database.Statement<[number]>;
  private readonly allStmt: Database.Statement<[], Omit<FanoutRow, 'recipients' | 'skipped'> & { recipients: Buffer; skipped: string }>;

  constructor(db: RelayDb) {
    const sqlite = db.$client;
    this.insertStmt = sqlite.prepare(INSERT_SQL);
    this.removeStmt = sqlite.prepare('DELETE FROM fanouts WHERE id = ?');
    this.allStmt = sqlite.prepare(ALL_SQL);
  }

  /** Stores a fan-out; returns its id. `packedRecipients`: `f.recipients` already packed, if the caller has them so. */
  accept(f: Omit<FanoutRow, 'id'>, packedRecipients?: Uint8Array): number {
    const recipients = buffer(packedRecipients ?? encodeRecipientList(f.recipients));
    return Number(this.insertStmt.run(f.guidPrefix, f.senderAccountId, f.senderDeviceId, f.type, buffer(f.ciphertext), f.serverTimestamp, recipients, JSON.stringify(f.skipped)).lastInsertRowid);
  }

  remove(id: number): void {
    this.removeStmt.run(id);
  }

  /** Every fan-out not yet expanded, oldest first. */
  all(): FanoutRow[] {
    return this.allStmt.all().map((r) => ({
      ...r,
      recipients: decodeRecipientList(r.recipients, MAX_SEND_DEVICES),
      skipped: JSON.parse(r.skipped) as string[],
    }));
  }
}
