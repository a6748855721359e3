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

/**
 * The sender columns of an envelope that has no sender (a sealed send: the relay does not know
 * who sent it): an account id no account can have (ids are 3 to 32 characters) and device 0
 * (device ids start at 1). Such an envelope is delivered without `from` and gets no delivery
 * receipt. The columns stay NOT NULL and the batch row layout stays as it is.
 */
export const NO_SENDER: Readonly<{ accountId: ''; deviceId: 0 }> = Object.freeze({ accountId: '', deviceId: 0 });

/** Whether a queued envelope has no sender (see {@link NO_SENDER}). */
export function hasNoSender(row: { senderAccountId: string }): boolean {
  return row.senderAccountId === NO_SENDER.accountId;
}

/** What an ack removed: enough to address a delivery receipt, nothing more. */
export interface AckedEnvelope {
  guid: string;
  senderAccountId: string;
  type: string;
  /** When the relay took it: a receipt goes only to sender devices that existed then. */
  serverTimestamp: number;
}

// The send / deliver / ack path runs these for every message, so they are raw better-sqlite3
// statements prepared once: drizzle builds and maps every call through its query builder,
// which profiled at ~10x the cost of executing the statement itself. Column names follow
// schema.ts (`envelopes`, `envelope_batches`, `envelope_batch_acks`).
const ROW_COLUMNS = `seq, guid, account_id AS accountId, device_id AS deviceId, sender_account_id AS senderAccountId,
  sender_device_id AS senderDeviceId, type, ciphertext, server_timestamp AS serverTimestamp`;
const SPILL_SQL = `INSERT INTO envelopes (seq, guid, account_id, device_id, sender_account_id, sender_device_id, type, ciphertext, server_timestamp)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const PAGE_SQL = `SELECT ${ROW_COLUMNS} FROM envelopes
  WHERE account_id = ? AND device_id = ? AND seq > ? ORDER BY seq LIMIT ?`;
// One guid per execution: the statement stays prepared whatever the ack's length, and the
// unique index on guid makes each a single lookup.
const ACK_SQL = `DELETE FROM envelopes WHERE guid = ? AND account_id = ? AND device_id = ?
  RETURNING guid, sender_account_id AS senderAccountId, type, server_timestamp AS serverTimestamp`;

/** Receives envelopes once their transaction has committed, in queue (`seq`) order. */
export type CommittedListener = (rows: EnvelopeRow[]) => void;

/** A batch row holds at most this many envelopes… */
const BATCH_MAX_ROWS = 4096;
/** …and about this many ciphertext bytes (a single envelope may exceed it). */
const BATCH_MAX_BYTES = 4 * 1024 * 1024;

/**
 * About this many envelopes are spilled per transaction (whole batches): 2,048 take about 12 ms
 * on the project's machine (6 µs each), where one transaction for 30,000 held the event loop
 * for 170 ms.
 */
const SPILL_STEP = 2048;

/** When to move young envelopes to the `envelopes` table (see {@link EnvelopeRepo.spill}). */
export interface SpillPolicy {
  /** A batch older than this (ms) with envelopes still queued is spilled. */
  maxAgeMs: number;
  /** Spill the oldest batches while more envelopes than this are held in memory… */
  maxEnvelopes: number;
  /** …or more ciphertext bytes than this. */
  maxBytes: number;
}

export const DEFAULT_SPILL_POLICY: SpillPolicy = Object.freeze({ maxAgeMs: 2000, maxEnvelopes: 100_000, maxBytes: 64 * 1024 * 1024 });

/** One commit's envelopes (or a part of them), stored as one `envelope_batches` row. */
interface Batch {
  /** `seq` of the first envelope: the row's id. */
  id: number;
  /** By position in the row; a gone entry's place is emptied, so the batch does not keep it reachable. */
  entries: (Entry | undefined)[];
  /** Entries not yet removed. */
  live: number;
  /** One bit per entry: removed (acked, dropped), as committed. */
  removed: Uint8Array;
  bornAt: number;
}

/** A young envelope, indexed in memory. */
interface Entry {
  row: EnvelopeRow;
  batch: Batch;
  queue: DeviceQueue;
  index: number;
  /** Removed by a committed transaction (or spilled to the table). */
  gone: boolean;
  /** Removed by the open transaction. */
  removing: boolean;
}

/**
 * A device's young envelopes in `seq` order; those before `head` are all gone, and `gone` more
 * are gone after it. Gone entries are dropped from the array once they are half of it (and at
 * least {@link COMPACT_MIN}), so an envelope kept queued at the front does not keep every
 * delivered one behind it reachable.
 */
interface DeviceQueue {
  accountId: string;
  deviceId: number;
  entries: Entry[];
  head: number;
  gone: number;
}

/** A device queue is compacted once it holds at least this many gone entries (and they are half of it). */
const COMPACT_MIN = 32;

/**
 * The per-device envelope queue. Rows leave only by {@link ack} from the recipient device
 * (or by retention / device removal).
 *
 * Two stores, one queue. Envelopes arrive as one `envelope_batches` row per commit (the
 * commit's envelopes encoded together, written in the queue's {@link beforeCommit}) and are
 * indexed in memory; most are acked within moments, and a batch whose last envelope is acked
 * is deleted, so a delivered message costs one part of one row write and one part of one
 * delete, not a row insert and a row delete each with their indexes. Which envelopes of a
 * batch are gone is kept per batch as a bitmap (`envelope_batch_acks`), written once per
 * commit that touches it. Batches still partly queued after {@link SpillPolicy.maxAgeMs}
 * (and the oldest ones when memory holds too many) are moved into the `envelopes` table by
 * {@link spill}, oldest first, keeping their `seq`: every `envelopes` row is older than every
 * young envelope, so a page is the table's rows followed by the young ones. At start,
 * {@link recover} spills whatever batches a stopped relay left.
 *
 * As the {@link CommitQueue}'s {@link CommitObserver}, the repository journals the rows each
 * transaction inserts and hands them to its {@link onCommitted} listener right after the
 * commit, in `seq` order and before any sender is answered. Rows of an operation that failed
 * (rolled-back savepoint) or of a failed batch are never handed over, and their removals are
 * undone. This lets the delivery hub push new envelopes straight to connected devices without
 * reading them back, while never pushing anything that is not durable.
 *
 * @example
 * const [row] = repo.insert([{ guid, accountId, deviceId, senderAccountId, senderDeviceId, type: 'message', ciphertext, serverTimestamp }]);
 * const page = repo.page(accountId, deviceId, 0, 100); // row.seq orders delivery
 */
export class EnvelopeRepo implements CommitObserver {
  /** Called with every committed batch's new rows (the delivery hub). */
  onCommitted: CommittedListener | undefined;
  /** Envelopes committed into the queue, and removed from it by committed acks and device removals (metrics). */
  storedTotal = 0;
  removedTotal = 0;
  /** Envelopes deleted by retention (metrics). */
  expiredTotal = 0;
  /** Rows of the `envelopes` table the open transaction removed (acks, drops), for {@link removedTotal}. */
  private tableRemovals = 0;
  private tableRemovalMark = 0;
  private journal: EnvelopeRow[] = [];
  private opMark = 0;
  private removals: Entry[] = [];
  private removalMark = 0;
  /** Batch rows written by the open transaction, indexed at its commit. */
  private written: { id: number; rows: EnvelopeRow[] }[] = [];
  /** New removal bitmaps of batches the open transaction touched. */
  private readonly touched = new Map<Batch, Uint8Array>();
  private nextSeq: number;

  private readonly young = new Map<string, Entry>();
  /** Account → device → young envelopes (no key strings built per envelope). */
  private readonly queues = new Map<string, Map<number, DeviceQueue>>();
  /** Batches with envelopes still queued, oldest first (ids grow). */
  private readonly batches = new Map<number, Batch>();
  private youngBytes = 0;
  private spillScheduled = false;
  private spillTimer: NodeJS.Timeout | undefined;

  private readonly spillStmt: Database.Statement<[number, string, string, number, string, number, string, Uint8Array, number]>;
  private readonly pageStmt: Database.Statement<[string, number, number, number], EnvelopeRow>;
  private readonly ackStmt: Database.Statement<[string, string, number], AckedEnvelope>;
  private readonly dropQueueStmt: Database.Statement<[string, number]>;
  private readonly firstYoungStmt: Database.Statement<[number], { seq: number }>;
  private readonly expireBeforeStmt: Database.Statement<[number, number]>;
  private readonly expireAllStmt: Database.Statement<[number]>;
  private readonly insertBatchStmt: Database.Statement<[number, Uint8Array]>;
  private readonly deleteBatchStmt: Database.Statement<[number]>;
  private readonly setRemovedStmt: Database.Statement<[number, Uint8Array]>;
  private readonly deleteRemovedStmt: Database.Statement<[number]>;
  private readonly sqlite: Database.Database;

  constructor(db: RelayDb, private readonly policy: SpillPolicy = DEFAULT_SPILL_POLICY, private readonly clock: () => number = () => performance.now()) {
    const sqlite = (this.sqlite = db.$client);
    this.spillStmt = sqlite.prepare(SPILL_SQL);
    this.pageStmt = sqlite.prepare(PAGE_SQL);
    this.ackStmt = sqlite.prepare(ACK_SQL);
    this.dropQueueStmt = sqlite.prepare('DELETE FROM envelopes WHERE account_id = ? AND device_id = ?');
    this.firstYoungStmt = sqlite.prepare('SELECT seq FROM envelopes WHERE server_timestamp >= ? ORDER BY seq LIMIT 1');
    this.expireBeforeStmt = sqlite.prepare('DELETE FROM envelopes WHERE seq < ? AND server_timestamp < ?');
    this.expireAllStmt = sqlite.prepare('DELETE FROM envelopes WHERE server_timestamp < ?');
    this.insertBatchStmt = sqlite.prepare('INSERT INTO envelope_batches (id, rows) VALUES (?, ?)');
    this.deleteBatchStmt = sqlite.prepare('DELETE FROM envelope_batches WHERE id = ?');
    this.setRemovedStmt = sqlite.prepare('INSERT INTO envelope_batch_acks (batch_id, acked) VALUES (?, ?) ON CONFLICT (batch_id) DO UPDATE SET acked = excluded.acked');
    this.deleteRemovedStmt = sqlite.prepare('DELETE FROM envelope_batch_acks WHERE batch_id = ?');
    this.nextSeq = this.highestSeq();
  }

  /** The highest `seq` ever given out, in the table or in a stored batch. */
  private highestSeq(): number {
    const table = this.sqlite.prepare(`SELECT MAX(s) AS s FROM (SELECT MAX(seq) AS s FROM envelopes
      UNION ALL SELECT seq AS s FROM sqlite_sequence WHERE name = 'envelopes')`).get() as { s: number | null };
    const last = this.sqlite.prepare('SELECT rows FROM envelope_batches ORDER BY id DESC LIMIT 1').get() as { rows: Buffer } | undefined;
    let high = table.s ?? 0;
    if (last !== undefined) for (const r of decodeEnvelopeBatch(last.rows)) high = Math.max(high, r.seq);
    return high;
  }

  /**
   * Inserts the envelopes in order; returns them with their assigned queue `seq`. Must run
   * inside a CommitQueue operation (an insert outside one would never be written or reach the
   * listener).
   */
  insert(rows: NewEnvelope[]): EnvelopeRow[] {
    if (rows.length > 0 && !this.sqlite.inTransaction) throw new Error('envelope insert outside a commit-queue transaction');
    const out: EnvelopeRow[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const row: EnvelopeRow = {
        seq: ++this.nextSeq, guid: r.guid, accountId: r.accountId, deviceId: r.deviceId, senderAccountId: r.senderAccountId,
        senderDeviceId: r.senderDeviceId, type: r.type, ciphertext: r.ciphertext, serverTimestamp: r.serverTimestamp,
      };
      this.journal.push(row);
      out[i] = row;
    }
    return out;
  }

  opStarted(): void {
    this.opMark = this.journal.length;
    this.removalMark = this.removals.length;
    this.tableRemovalMark = this.tableRemovals;
  }

  opRolledBack(): void {
    this.tableRemovals = this.tableRemovalMark;
    this.journal.length = this.opMark;
    for (let i = this.removalMark; i < this.removals.length; i++) this.removals[i]!.removing = false;
    this.removals.length = this.removalMark;
  }

  /** Writes the transaction's new envelopes as batch rows and its removals as bitmaps. */
  beforeCommit(): void {
    const rows = this.journal;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      bytes += rows[i]!.ciphertext.byteLength;
      if (i + 1 === rows.length || i + 1 - start >= BATCH_MAX_ROWS || bytes >= BATCH_MAX_BYTES) {
        const part = start === 0 && i + 1 === rows.length ? rows : rows.slice(start, i + 1);
        this.insertBatchStmt.run(part[0]!.seq, encodeBatch(part));
        this.written.push({ id: part[0]!.seq, rows: part });
        start = i + 1;
        bytes = 0;
      }
    }
    if (this.removals.length === 0) return;
    for (const e of this.removals) {
      let bits = this.touched.get(e.batch);
      if (bits === undefined) this.touched.set(e.batch, (bits = e.batch.removed.slice()));
      bits[e.index >> 3]! |= 1 << (e.index & 7);
    }
    for (const [batch, bits] of this.touched) {
      if (countBits(bits) === batch.entries.length) {
        this.deleteBatchStmt.run(batch.id);
        this.deleteRemovedStmt.run(batch.id);
      } else {
        this.setRemovedStmt.run(batch.id, blob(bits));
      }
    }
  }

  committed(): void {
    const now = this.clock();
    this.storedTotal += this.journal.length;
    this.removedTotal += this.removals.length + this.tableRemovals;
    this.tableRemovals = 0;
    for (const [batch, bits] of this.touched) batch.removed = bits;
    this.touched.clear();
    for (const e of this.removals) {
      e.removing = false;
      this.forget(e);
    }
    this.removals = [];
    for (const w of this.written) this.index(w.id, w.rows, now);
    this.written = [];
    const rows = this.journal;
    this.journal = [];
    if (rows.length > 0) this.onCommitted?.(rows);
    if (this.young.size > this.policy.maxEnvelopes || this.youngBytes > this.policy.maxBytes) this.scheduleSpill();
  }

  rolledBack(): void {
    this.tableRemovals = 0;
    this.journal = [];
    for (const e of this.removals) e.removing = false;
    this.removals = [];
    this.touched.clear();
    this.written = [];
  }

  /**
   * Indexes a batch row's envelopes: a committed one's (all of them), or one a stopped relay left
   * ({@link recover}), leaving out what its `acked` bitmap marks removed. A batch with nothing
   * left (never left by this relay: it deletes such a row in the same commit) is kept all the
   * same, so that the next spill deletes its row. Returns how many were indexed.
   */
  private index(id: number, rows: EnvelopeRow[], bornAt: number, acked: Uint8Array | null = null): number {
    const removed = new Uint8Array((rows.length + 7) >> 3);
    if (acked !== null) removed.set(acked.subarray(0, removed.length));
    const batch: Batch = { id, entries: new Array(rows.length), live: 0, removed, bornAt };
    let q: DeviceQueue | undefined;
    for (let i = 0; i < rows.length; i++) {
      if (acked !== null && (removed[i >> 3]! & (1 << (i & 7))) !== 0) continue;
      const row = rows[i]!;
      // consecutive rows often share a device (a sendBatch, a group's expansion)
      if (q === undefined || q.deviceId !== row.deviceId || q.accountId !== row.accountId) q = this.queueOf(row.accountId, row.deviceId, true)!;
      const entry: Entry = { row, batch, queue: q, index: i, gone: false, removing: false };
      batch.entries[i] = entry;
      batch.live++;
      this.young.set(row.guid, entry);
      this.youngBytes += row.ciphertext.byteLength;
      q.entries.push(entry);
    }
    this.batches.set(id, batch);
    return batch.live;
  }

  private queueOf(accountId: string, deviceId: number, create: boolean): DeviceQueue | undefined {
    let devices = this.queues.get(accountId);
    if (devices === undefined) {
      if (!create) return undefined;
      this.queues.set(accountId, (devices = new Map()));
    }
    let q = devices.get(deviceId);
    if (q === undefined && create) devices.set(deviceId, (q = { accountId, deviceId, entries: [], head: 0, gone: 0 }));
    return q;
  }

  /** Drops a young envelope from the memory index (removed, or now in the table). */
  private forget(e: Entry): void {
    if (e.gone) return;
    e.gone = true;
    this.young.delete(e.row.guid);
    this.youngBytes -= e.row.ciphertext.byteLength;
    const batch = e.batch;
    batch.entries[e.index] = undefined;
    if (--batch.live === 0) this.batches.delete(batch.id);
    const q = e.queue;
    const entries = q.entries;
    q.gone++;
    while (q.head < entries.length && entries[q.head]!.gone) {
      q.head++;
      q.gone--;
    }
    if (q.head === entries.length) {
      const devices = this.queues.get(q.accountId);
      if (devices?.get(q.deviceId) === q) {
        devices.delete(q.deviceId);
        if (devices.size === 0) this.queues.delete(q.accountId);
      }
    } else if (q.head + q.gone >= COMPACT_MIN && (q.head + q.gone) * 2 >= entries.length) {
      // each compaction copies fewer entries than it drops: amortized O(1) per envelope
      const live: Entry[] = [];
      for (let i = q.head; i < entries.length; i++) if (!entries[i]!.gone) live.push(entries[i]!);
      q.entries = live;
      q.head = 0;
      q.gone = 0;
    }
  }

  /** Marks a young envelope removed by the open transaction (callers run inside a commit-queue operation). */
  private remove(e: Entry): boolean {
    if (e.gone || e.removing) return false;
    e.removing = true;
    this.removals.push(e);
    return true;
  }

  /** Up to `limit` envelopes of one device with `seq > afterSeq`, oldest first. */
  page(accountId: string, deviceId: number, afterSeq: number, limit: number): EnvelopeRow[] {
    const rows = this.pageStmt.all(accountId, deviceId, afterSeq, limit);
    if (rows.length >= limit) return rows;
    const q = this.queueOf(accountId, deviceId, false);
    if (q === undefined) return rows;
    const entries = q.entries;
    // first entry with seq > afterSeq (entries are in seq order)
    let lo = q.head;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (entries[mid]!.row.seq > afterSeq) hi = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < entries.length && rows.length < limit; i++) {
      const e = entries[i]!;
      if (!e.gone) rows.push(e.row);
    }
    return rows;
  }

  /** Envelopes queued for one device (tests, observability). */
  queued(accountId: string, deviceId: number): number {
    const table = (this.sqlite.prepare('SELECT COUNT(*) AS n FROM envelopes WHERE account_id = ? AND device_id = ?').get(accountId, deviceId) as { n: number }).n;
    const q = this.queueOf(accountId, deviceId, false);
    let young = 0;
    if (q !== undefined) for (let i = q.head; i < q.entries.length; i++) if (!q.entries[i]!.gone) young++;
    return table + young;
  }

  /** Young envelopes held in memory (observability / tests). */
  get youngCount(): number {
    return this.young.size;
  }

  /** Ciphertext bytes of the young envelopes held in memory (observability). */
  get youngByteCount(): number {
    return this.youngBytes;
  }

  /**
   * Deletes the listed envelopes if (and only if) they are queued for this device. Unknown
   * guids and other devices' guids are ignored; a second ack of the same guid finds nothing.
   */
  ack(accountId: string, deviceId: number, guids: string[]): AckedEnvelope[] {
    if (guids.length > 0 && !this.sqlite.inTransaction) throw new Error('envelope ack outside a commit-queue transaction');
    const acked: AckedEnvelope[] = [];
    for (const guid of guids) {
      const e = this.young.get(guid);
      if (e !== undefined) {
        // a young envelope has no table row: nothing more to look up
        const r = e.row;
        if (r.accountId === accountId && r.deviceId === deviceId && this.remove(e)) acked.push({ guid, senderAccountId: r.senderAccountId, type: r.type, serverTimestamp: r.serverTimestamp });
        continue;
      }
      const row = this.ackStmt.get(guid, accountId, deviceId);
      if (row !== undefined) {
        acked.push(row);
        this.tableRemovals++;
      }
    }
    return acked;
  }

  /** Deletes every envelope queued for a device (the device was removed). */
  dropQueue(accountId: string, deviceId: number): number {
    if (!this.sqlite.inTransaction) throw new Error('envelope queue drop outside a commit-queue transaction');
    let n = this.dropQueueStmt.run(accountId, deviceId).changes;
    this.tableRemovals += n;
    const q = this.queueOf(accountId, deviceId, false);
    if (q !== undefined) for (let i = q.head; i < q.entries.length; i++) if (this.remove(q.entries[i]!)) n++;
    return n;
  }

  /**
   * Deletes envelopes of the `envelopes` table whose server timestamp is older than `cutoff`
   * (young envelopes are spilled first by the caller; see runRetention). `seq` grows with time
   * (rows get their timestamp from the clock of the commit that inserts them), so they are the
   * rows before the first one at or after `cutoff`: found by walking `seq` from the oldest, and
   * deleted by `seq` range, with no index on the timestamp. A row older than `cutoff` behind a
   * younger one (a clock set back) waits until the rows before it expire.
   */
  expire(cutoff: number): number {
    const first = this.firstYoungStmt.get(cutoff);
    const n = first === undefined ? this.expireAllStmt.run(cutoff).changes : this.expireBeforeStmt.run(first.seq, cutoff).changes;
    this.expiredTotal += n;
    return n;
  }

  /**
   * Moves batches into the `envelopes` table, oldest first, while `take(batch)` says so and at
   * most about `limit` envelopes (whole batches, at least one): each queued envelope becomes a
   * row with its `seq`, and the batch row and its bitmap are deleted, in one transaction of its
   * own. Never runs inside another transaction, nor on a closed database (returns 0): it is
   * called from timers, between commit-queue flushes. Returns the envelopes moved, and whether
   * `take` wanted more than `limit` allowed.
   */
  private spillWhile(take: (batch: Batch, young: number, bytes: number) => boolean, limit: number): { moved: number; more: boolean } {
    if (this.sqlite.inTransaction || !this.sqlite.open) return { moved: 0, more: false };
    const chosen: Batch[] = [];
    let young = this.young.size;
    let bytes = this.youngBytes;
    let taking = 0;
    let more = false;
    for (const b of this.batches.values()) {
      if (!take(b, young, bytes)) break;
      if (chosen.length > 0 && taking + b.live > limit) {
        more = true;
        break;
      }
      taking += b.live;
      chosen.push(b);
      for (const e of b.entries) {
        if (e === undefined || e.gone) continue;
        young--;
        bytes -= e.row.ciphertext.byteLength;
      }
    }
    if (chosen.length === 0) return { moved: 0, more: false };
    let moved = 0;
    this.sqlite.transaction(() => {
      for (const b of chosen) {
        for (const e of b.entries) {
          if (e === undefined || e.gone) continue;
          const r = e.row;
          this.writeRow(r);
          moved++;
        }
        this.deleteBatchStmt.run(b.id);
        this.deleteRemovedStmt.run(b.id);
      }
    }).immediate();
    for (const b of chosen) {
      for (const e of b.entries) if (e !== undefined) this.forget(e);
      this.batches.delete(b.id);
    }
    return { moved, more };
  }

  /** Writes a young envelope as an `envelopes` row, keeping its seq (spill and recovery). */
  private writeRow(r: EnvelopeRow): void {
    this.spillStmt.run(r.seq, r.guid, r.accountId, r.deviceId, r.senderAccountId, r.senderDeviceId, r.type, blob(r.ciphertext), r.serverTimestamp);
  }

  /**
   * Spills batches older than the policy's age, and the oldest while memory holds more than
   * its bounds, in steps of about {@link SPILL_STEP} envelopes: one step now, the next ones
   * scheduled on `setImmediate`, so a long backlog (a burst of traffic to offline devices) does
   * not hold the event loop in one transaction. Returns the envelopes this step moved. `all`
   * spills everything now (before retention, and at a clean stop).
   */
  spill(all = false): number {
    const old = this.clock() - this.policy.maxAgeMs;
    const { maxEnvelopes, maxBytes } = this.policy;
    const due = (b: Batch, young: number, bytes: number): boolean => all || b.bornAt <= old || young > maxEnvelopes || bytes > maxBytes;
    if (all) {
      let total = 0;
      for (let step = this.spillWhile(due, SPILL_STEP); step.moved > 0; step = this.spillWhile(due, SPILL_STEP)) total += step.moved;
      return total;
    }
    const step = this.spillWhile(due, SPILL_STEP);
    if (step.more) this.scheduleSpill();
    return step.moved;
  }

  private scheduleSpill(): void {
    if (this.spillScheduled) return;
    this.spillScheduled = true;
    setImmediate(() => {
      this.spillScheduled = false;
      this.spillOnTimer();
    });
  }

  /**
   * Told of a spill on a timer that failed; returns whether the relay goes on (a full disk: the
   * transaction rolled back, the envelopes stay in their batch rows and in memory, and a later
   * spill moves them). Any other failure is thrown, as before.
   */
  spillFailed: (err: unknown) => boolean = () => false;

  private spillOnTimer(): void {
    try {
      this.spill();
    } catch (err) {
      if (!this.spillFailed(err)) throw err;
    }
  }

  /** Spill on a timer (every half of the policy's age) until {@link stopSpilling}. */
  startSpilling(): void {
    this.spillTimer ??= setInterval(() => this.spillOnTimer(), Math.max(50, this.policy.maxAgeMs / 2));
    this.spillTimer.unref();
  }

  stopSpilling(): void {
    clearInterval(this.spillTimer);
    this.spillTimer = undefined;
  }

  /**
   * Takes up the batches a stopped relay left in the database as young envelopes, leaving out
   * what their bitmaps mark removed: indexed in memory as if just committed, and due to be
   * spilled (the spill timer moves them into the `envelopes` table). Writes nothing, so a relay
   * restarted on a full disk still starts and delivers them; acks of them are written as for
   * any young batch. Run once at start, before anything is served and before any commit;
   * returns the envelopes taken up.
   */
  recover(): number {
    if (this.batches.size > 0 || this.journal.length > 0) throw new Error('envelope recovery after the relay started');
    const stored = this.sqlite.prepare(`SELECT b.id AS id, b.rows AS rows, a.acked AS acked FROM envelope_batches b
      LEFT JOIN envelope_batch_acks a ON a.batch_id = b.id ORDER BY b.id`).all() as { id: number; rows: Buffer; acked: Buffer | null }[];
    const due = this.clock() - this.policy.maxAgeMs;
    let queued = 0;
    for (const b of stored) queued += this.index(b.id, decodeEnvelopeBatch(b.rows), due, b.acked);
    if (stored.length > 0) this.scheduleSpill();
    return queued;
  }
}

function countBits(bits: Uint8Array): number {
  let n = 0;
  for (let b of bits) {
    while (b !== 0) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

/** Version byte of the batch row format below. */
const BATCH_FORMAT = 1;
/** Fixed bytes per row: seq and server timestamp (f64), device ids and ciphertext index (u32), four string lengths (u16). */
const ROW_FIXED_BYTES = 8 + 8 + 4 + 4 + 4 + 4 * 2;

/**
 * A batch row, little-endian: `u8 format, u32 ciphertext count, u32 row count`, each distinct
 * ciphertext as `u32 length, bytes` (envelopes sharing one, a group send's or a receipt's, store
 * it once), then each row as `f64 seq, f64 serverTimestamp, u32 deviceId, u32 senderDeviceId,
 * u32 ciphertext index` and the strings `guid, accountId, senderAccountId, type` as
 * `u16 length, UTF-8`. Local to this relay's database, written on every commit: a fixed
 * layout written in one pass, rather than a self-describing encoding.
 */
function encodeBatch(rows: EnvelopeRow[]): Buffer {
  let size = 9;
  let last: Uint8Array | undefined;
  for (const r of rows) {
    if (r.ciphertext !== last) {
      last = r.ciphertext;
      size += 4 + last.byteLength;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit
    size += ROW_FIXED_BYTES + 3 * (r.guid.length + r.accountId.length + r.senderAccountId.length + r.type.length);
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = BATCH_FORMAT;
  buf.writeUInt32LE(rows.length, 5);
  let pos = 9;
  let ciphertexts = 0;
  last = undefined;
  for (const r of rows) {
    if (r.ciphertext === last) continue;
    last = r.ciphertext;
    buf.writeUInt32LE(last.byteLength, pos);
    buf.set(last, pos + 4);
    pos += 4 + last.byteLength;
    ciphertexts++;
  }
  buf.writeUInt32LE(ciphertexts, 1);
  let index = -1;
  last = undefined;
  for (const r of rows) {
    if (r.ciphertext !== last) {
      last = r.ciphertext;
      index++;
    }
    buf.writeDoubleLE(r.seq, pos);
    buf.writeDoubleLE(r.serverTimestamp, pos + 8);
    buf.writeUInt32LE(r.deviceId, pos + 16);
    buf.writeUInt32LE(r.senderDeviceId, pos + 20);
    buf.writeUInt32LE(index, pos + 24);
    pos = writeString(buf, r.type, writeString(buf, r.senderAccountId, writeString(buf, r.accountId, writeString(buf, r.guid, pos + 28))));
  }
  return buf.subarray(0, pos);
}

function writeString(buf: Buffer, s: string, pos: number): number {
  const n = buf.write(s, pos + 2);
  buf.writeUInt16LE(n, pos);
  return pos + 2 + n;
}

/** The rows of a batch row (see {@link encodeBatch}). Exported for tests. */
export function decodeEnvelopeBatch(bytes: Uint8Array): EnvelopeRow[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf[0] !== BATCH_FORMAT) throw new Error(`unknown envelope batch format ${buf[0]}`);
  const ciphertexts: Buffer[] = new Array(buf.readUInt32LE(1));
  const rows: EnvelopeRow[] = new Array(buf.readUInt32LE(5));
  let pos = 9;
  for (let i = 0; i < ciphertexts.length; i++) {
    const n = buf.readUInt32LE(pos);
    ciphertexts[i] = buf.subarray(pos + 4, pos + 4 + n);
    pos += 4 + n;
  }
  const str = (): string => {
    const n = buf.readUInt16LE(pos);
    const out = buf.toString('utf8', pos + 2, pos + 2 + n);
    pos += 2 + n;
    return out;
  };
  for (let i = 0; i < rows.length; i++) {
    const seq = buf.readDoubleLE(pos);
    const serverTimestamp = buf.readDoubleLE(pos + 8);
    const deviceId = buf.readUInt32LE(pos + 16);
    const senderDeviceId = buf.readUInt32LE(pos + 20);
    const ciphertext = ciphertexts[buf.readUInt32LE(pos + 24)];
    if (ciphertext === undefined) throw new Error('envelope batch row names a missing ciphertext');
    pos += 28;
    const guid = str();
    const accountId = str();
    const senderAccountId = str();
    const type = str();
    rows[i] = { seq, guid, accountId, deviceId, senderAccountId, senderDeviceId, type, ciphertext, serverTimestamp };
  }
  return rows;
}

/** better-sqlite3 binds Buffers as blobs. */
function blob(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
