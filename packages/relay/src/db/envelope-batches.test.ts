import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitQueue } from './commit-queue.js';
import { openDatabase, type OpenDatabase } from './database.js';
import { decodeEnvelopeBatch, EnvelopeRepo, type EnvelopeRow, type NewEnvelope, type SpillPolicy } from './envelope-repo.js';

/**
 * The envelope queue's two stores: young envelopes in one batch row per commit (indexed in
 * memory) and the `envelopes` table they spill into. Every test reads the queue only through
 * the repository's page(), which must always be the device's envelopes in `seq` order.
 */

let dir: string;
let database: OpenDatabase;
let queue: CommitQueue;
let repo: EnvelopeRepo;
let clock = 0;

const POLICY: SpillPolicy = { maxAgeMs: 1000, maxEnvelopes: 1_000_000, maxBytes: 1 << 30 };

function open(policy: SpillPolicy = POLICY): void {
  database = openDatabase(join(dir, 'relay.sqlite'));
  queue = new CommitQueue(database.sqlite);
  repo = new EnvelopeRepo(database.db, policy, () => clock);
  queue.observe(repo);
}

/** Closes without spilling, as a killed relay leaves its database. */
function crash(): void {
  database.close();
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sotto-batches-'));
  clock = 0;
  open();
});

afterEach(() => {
  if (database.sqlite.open) {
    queue.close();
    database.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const env = (deviceId = 1, accountId = 'bob'): NewEnvelope => ({
  guid: `g${++n}`, accountId, deviceId, senderAccountId: 'ann', senderDeviceId: 1, type: 'whisper', ciphertext: new Uint8Array([n & 255, 7]), serverTimestamp: 1000 + n,
});

const insert = (rows: NewEnvelope[]): Promise<EnvelopeRow[]> => queue.run(() => repo.insert(rows));
const ack = (guids: string[], deviceId = 1): Promise<string[]> => queue.run(() => repo.ack('bob', deviceId, guids).map((a) => a.guid));
const guids = (deviceId = 1, after = 0, limit = 1000): string[] => repo.page('bob', deviceId, after, limit).map((r) => r.guid);
/** A full collection; `gc` is exposed at run time, so the suite needs no node flag. */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // WeakRef targets stay alive until the end of the current job
  await new Promise((r) => setTimeout(r, 0));
  gc();
}
const count = (table: string): number => (database.sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;

describe('envelope batches', () => {
  it('writes one batch row per commit and deletes it with its last ack', async () => {
    const rows = await Promise.all([insert([env(), env()]), insert([env()])]);
    expect(count('envelope_batches')).toBe(1);
    expect(count('envelopes')).toBe(0);
    const all = rows.flat().map((r) => r.guid);
    expect(guids()).toEqual(all);
    expect(await ack([all[0]!, all[2]!])).toEqual([all[0], all[2]]);
    // the bitmap marks envelopes 0 and 2 of the batch
    expect(database.sqlite.prepare('select acked from envelope_batch_acks').get()).toEqual({ acked: Buffer.from([0b101]) });
    expect(guids()).toEqual([all[1]]);
    expect(await ack([all[1]!, all[1]!, 'unknown'])).toEqual([all[1]]);
    expect([count('envelope_batches'), count('envelope_batch_acks')]).toEqual([0, 0]);
    expect(guids()).toEqual([]);
    expect(repo.youngCount).toBe(0);
  });

  it('ignores acks from another device and undoes the acks of a failed operation', async () => {
    const [a, b] = await insert([env(1), env(2)]);
    expect(await ack([a!.guid], 2)).toEqual([]);
    await expect(queue.run(() => {
      repo.ack('bob', 1, [a!.guid]);
      throw new Error('fails after acking');
    })).rejects.toThrow('fails after acking');
    expect(guids(1)).toEqual([a!.guid]);
    // among others: the batch runs again with savepoints, the failing one's ack is undone alone
    const results = await Promise.allSettled([
      queue.run(() => repo.ack('bob', 2, [b!.guid]).length),
      queue.run(() => {
        repo.ack('bob', 1, [a!.guid]);
        throw new Error('no');
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect([guids(1), guids(2)]).toEqual([[a!.guid], []]);
    expect(count('envelope_batch_acks')).toBe(1);
  });

  it('spills batches older than the policy age into the table, keeping seq and order', async () => {
    const first = await insert([env(), env(2), env()]);
    await ack([first[0]!.guid]);
    clock += 600;
    const second = await insert([env(), env()]);
    clock += 600;
    expect(repo.spill()).toBe(2); // the first batch only: its two envelopes still queued
    expect(count('envelopes')).toBe(2);
    expect(count('envelope_batches')).toBe(1);
    const page = repo.page('bob', 1, 0, 10);
    expect(page.map((r) => r.guid)).toEqual([first[2]!.guid, ...second.map((r) => r.guid)]);
    expect(page.map((r) => r.seq)).toEqual([first[2]!.seq, ...second.map((r) => r.seq)]);
    expect(page[0]!.ciphertext).toEqual(Buffer.from(first[2]!.ciphertext));
    // a page limit that ends inside the table, then a cursor past it
    expect(guids(1, 0, 1)).toEqual([first[2]!.guid]);
    expect(guids(1, first[2]!.seq, 10)).toEqual(second.map((r) => r.guid));
    // an ack of a spilled envelope deletes its table row
    expect(await ack([first[2]!.guid])).toEqual([first[2]!.guid]);
    expect(count('envelopes')).toBe(1); // device 2's
    expect(repo.queued('bob', 1)).toBe(2);
  });

  it('spills a long backlog in steps between turns, oldest first, and all of it at once when asked', async () => {
    // 30 commits of 300 envelopes for offline devices: 9,000 due at once
    const inserted: EnvelopeRow[] = [];
    for (let b = 0; b < 30; b++) inserted.push(...(await insert(Array.from({ length: 300 }, (_, i) => env(1 + (i % 3))))));
    clock += 5000;
    const first = repo.spill();
    // whole batches of 300, as many as fit in a step of 2,048 envelopes
    expect(first).toBe(1800);
    expect(count('envelopes')).toBe(1800);
    // every table row is older than every young envelope, so pages stay in seq order meanwhile
    const seqs = (d: number): number[] => repo.page('bob', d, 0, 10_000).map((r) => r.seq);
    expect(seqs(1)).toEqual(inserted.filter((r) => r.deviceId === 1).map((r) => r.seq));
    // the rest follows on later turns, one step per turn
    let turns = 0;
    while (repo.youngCount > 0 && turns < 20) {
      await new Promise((r) => setImmediate(r));
      turns++;
      expect(count('envelopes')).toBeLessThanOrEqual(1800 * (turns + 1));
    }
    expect([repo.youngCount, count('envelopes'), count('envelope_batches')]).toEqual([0, 9000, 0]);
    expect(turns).toBeGreaterThanOrEqual(4);
    for (const d of [1, 2, 3]) expect(seqs(d)).toEqual(inserted.filter((r) => r.deviceId === d).map((r) => r.seq));
    // spill(true) does everything in one call
    await insert(Array.from({ length: 3000 }, () => env()));
    expect(repo.spill(true)).toBe(3000);
    expect([repo.youngCount, count('envelopes')]).toEqual([0, 12000]);
  });

  it('spills the oldest batches while memory holds more envelopes than allowed', async () => {
    queue.close();
    database.close();
    open({ maxAgeMs: 60_000, maxEnvelopes: 3, maxBytes: 1 << 30 });
    const rows = [...(await insert([env(), env()])), ...(await insert([env(), env()]))];
    await new Promise((r) => setImmediate(r)); // the spill is scheduled after the commit
    expect(repo.youngCount).toBe(2);
    expect(count('envelopes')).toBe(2);
    expect(guids()).toEqual(rows.map((r) => r.guid));
  });

  it('recovers what a killed relay left: every unacked envelope once, acked ones never', async () => {
    const rows = await insert([env(), env(), env(2)]);
    await ack([rows[1]!.guid]);
    const later = await insert([env()]);
    crash();
    open();
    expect(repo.recover()).toBe(3);
    // taken up in memory as they are, and spilled into the table right after
    expect([repo.youngCount, count('envelope_batches'), count('envelopes')]).toEqual([3, 2, 0]);
    expect(guids()).toEqual([rows[0]!.guid, later[0]!.guid]);
    expect(guids(2)).toEqual([rows[2]!.guid]);
    await new Promise((r) => setImmediate(r));
    expect([repo.youngCount, count('envelope_batches'), count('envelope_batch_acks'), count('envelopes')]).toEqual([0, 0, 0, 3]);
    expect(guids()).toEqual([rows[0]!.guid, later[0]!.guid]);
    expect(guids(2)).toEqual([rows[2]!.guid]);
    // new envelopes continue after the recovered seqs
    const next = await insert([env()]);
    expect(next[0]!.seq).toBeGreaterThan(later[0]!.seq);
    expect(guids().at(-1)).toBe(next[0]!.guid);
  });

  it('recovers on a database that cannot grow (a full disk): nothing written until there is room, acks applied meanwhile', async () => {
    const rows = await insert(Array.from({ length: 40 }, () => ({ ...env(), ciphertext: new Uint8Array(2048).fill(n & 255) })));
    await ack([rows[0]!.guid]);
    crash();
    open();
    const sqlite = database.sqlite;
    sqlite.exec('VACUUM'); // no free pages left inside the file either
    sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`);
    expect(repo.recover()).toBe(39);
    expect(guids()).toEqual(rows.slice(1).map((r) => r.guid));
    // the spill finds no room: everything stays queued where it was, and is tried again
    repo.spillFailed = () => true;
    await new Promise((r) => setImmediate(r));
    expect([repo.youngCount, count('envelope_batches'), count('envelopes')]).toEqual([39, 1, 0]);
    expect(guids()).toEqual(rows.slice(1).map((r) => r.guid));
    // an ack rewrites the batch's bitmap in place (the page it is on has room)
    expect(await ack([rows[1]!.guid, rows[2]!.guid])).toEqual([rows[1]!.guid, rows[2]!.guid]);
    expect(guids()).toEqual(rows.slice(3).map((r) => r.guid));
    // room again: the next spill moves what is left
    sqlite.pragma('max_page_count = 1073741823');
    clock += 1000;
    repo.spill();
    expect([repo.youngCount, count('envelope_batches'), count('envelopes')]).toEqual([0, 0, 37]);
    expect(guids()).toEqual(rows.slice(3).map((r) => r.guid));
    crash();
    open();
    expect(repo.recover()).toBe(0);
    expect(guids()).toEqual(rows.slice(3).map((r) => r.guid));
  });

  it('continues seqs after batches left in the database even before recovery', async () => {
    const rows = await insert([env(), env()]);
    crash();
    open();
    const next = await insert([env()]);
    expect(next[0]!.seq).toBe(rows[1]!.seq + 1);
  });

  it('drops a removed device\'s young and spilled envelopes', async () => {
    await insert([env(3), env(3), env(1)]);
    clock += 2000;
    repo.spill();
    await insert([env(3)]);
    expect(repo.queued('bob', 3)).toBe(3);
    expect(await queue.run(() => repo.dropQueue('bob', 3))).toBe(3);
    expect(guids(3)).toEqual([]);
    expect(guids(1)).toHaveLength(1);
  });

  it('fails the whole commit when its batch row cannot be written, and indexes nothing of it', async () => {
    const kept = await insert([env()]);
    database.sqlite.exec("CREATE TEMP TRIGGER full BEFORE INSERT ON envelope_batches BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    const results = await Promise.allSettled([insert([env()]), queue.run(() => repo.ack('bob', 1, [kept[0]!.guid]))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(guids()).toEqual([kept[0]!.guid]); // the ack went with the batch
    expect(repo.youngCount).toBe(1);
    database.sqlite.exec('DROP TRIGGER full');
    const next = await insert([env()]);
    expect(guids()).toEqual([kept[0]!.guid, next[0]!.guid]);
    expect(await ack([kept[0]!.guid])).toEqual([kept[0]!.guid]);
  });

  it('does not keep acked envelopes reachable behind one that stays queued', async () => {
    // a device whose oldest envelope is never acked while it receives and acks 2,000 more,
    // some in batches shared with another device's envelope that also stays queued
    const [held] = await insert([env(1)]);
    const alive: WeakRef<Uint8Array>[] = [];
    for (let round = 0; round < 100; round++) {
      const rows = await insert([...Array.from({ length: 20 }, () => env(1)), ...(round % 10 === 0 ? [env(2)] : [])]);
      const mine = rows.filter((r) => r.deviceId === 1);
      for (const r of mine) alive.push(new WeakRef(r.ciphertext));
      await ack(mine.map((r) => r.guid));
    }
    await collectGarbage();
    const reachable = alive.filter((w) => w.deref() !== undefined).length;
    // a queue may hold gone entries up to about its live size (or a small minimum) before compacting
    expect(reachable).toBeLessThanOrEqual(64);
    expect(guids()).toEqual([held!.guid]);
    expect(guids(2)).toHaveLength(10);
  });

  it('round-trips the batch row format, with shared ciphertexts stored once and any UTF-8', () => {
    const shared = new Uint8Array([1, 2, 3]);
    const rows: EnvelopeRow[] = [
      { seq: 2 ** 40, guid: 'g-ü', accountId: 'bob', deviceId: 7, senderAccountId: 'änn', senderDeviceId: 2 ** 31, type: 'senderkey', ciphertext: shared, serverTimestamp: 1_700_000_000_123 },
      { seq: 2 ** 40 + 1, guid: 'g2', accountId: 'cy', deviceId: 1, senderAccountId: 'änn', senderDeviceId: 1, type: 'senderkey', ciphertext: shared, serverTimestamp: 1 },
    ];
    return queue.run(() => repo.insert(rows.map(({ seq: _seq, ...r }) => r))).then(() => {
      const stored = database.sqlite.prepare('select rows from envelope_batches').get() as { rows: Buffer };
      const back = decodeEnvelopeBatch(stored.rows);
      expect(back.map(({ seq: _s, ciphertext, ...r }) => ({ ...r, ciphertext: new Uint8Array(ciphertext) })))
        .toEqual(rows.map(({ seq: _s, ...r }) => r));
      // the shared ciphertext once: 9 header bytes, one 4+3 ciphertext, two rows
      const strings = ['g-ü', 'bob', 'änn', 'senderkey', 'g2', 'cy', 'änn', 'senderkey'].reduce((s, x) => s + 2 + Buffer.byteLength(x), 0);
      expect(stored.rows.length).toBe(9 + 7 + 2 * 28 + strings);
    });
  });

  it('matches a plain model under random inserts, acks, failed operations, spills and crashes', async () => {
    type Op =
      | { k: 'insert'; devices: number[] }
      | { k: 'ack'; device: number; picks: number[] }
      | { k: 'ackMost'; device: number; keepEvery: number }
      | { k: 'fail'; picks: number[] }
      | { k: 'spill'; advance: number }
      | { k: 'crash' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant('insert' as const), devices: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 5 }) }),
      // long queues with most of them acked: device queues compact their gone entries
      fc.record({ k: fc.constant('insert' as const), devices: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 30, maxLength: 80 }) }),
      fc.record({ k: fc.constant('ackMost' as const), device: fc.integer({ min: 1, max: 3 }), keepEvery: fc.integer({ min: 2, max: 7 }) }),
      fc.record({ k: fc.constant('ack' as const), device: fc.integer({ min: 1, max: 3 }), picks: fc.array(fc.nat(50), { maxLength: 4 }) }),
      fc.record({ k: fc.constant('fail' as const), picks: fc.array(fc.nat(50), { minLength: 1, maxLength: 3 }) }),
      fc.record({ k: fc.constant('spill' as const), advance: fc.integer({ min: 0, max: 1500 }) }),
      fc.record({ k: fc.constant('crash' as const) }),
    );
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
      // a fresh database per run
      if (database.sqlite.open) database.close();
      rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), 'sotto-batches-'));
      open();
      // the model: per device, queued guids in order
      const model = new Map<number, string[]>([[1, []], [2, []], [3, []]]);
      const all: { guid: string; device: number }[] = [];
      const seqOf = new Map<string, number>();
      for (const o of ops) {
        if (o.k === 'insert') {
          const made = await insert(o.devices.map((d) => env(d)));
          for (const r of made) {
            seqOf.set(r.guid, r.seq);
            model.get(r.deviceId)!.push(r.guid);
            all.push({ guid: r.guid, device: r.deviceId });
          }
        } else if (o.k === 'ack' && all.length > 0) {
          const picked = o.picks.map((p) => all[p % all.length]!.guid);
          const acked = await ack(picked, o.device);
          const queued = model.get(o.device)!;
          const expected = [...new Set(picked)].filter((g) => queued.includes(g));
          expect(acked.sort()).toEqual(expected.sort());
          model.set(o.device, queued.filter((g) => !picked.includes(g)));
        } else if (o.k === 'ackMost') {
          const queued = model.get(o.device)!;
          const picked = queued.filter((_, i) => i % o.keepEvery !== 0);
          expect((await ack(picked, o.device)).sort()).toEqual([...picked].sort());
          model.set(o.device, queued.filter((_, i) => i % o.keepEvery === 0));
        } else if (o.k === 'fail' && all.length > 0) {
          const picked = o.picks.map((p) => all[p % all.length]!);
          await queue.run(() => {
            for (const p of picked) repo.ack('bob', p.device, [p.guid]);
            repo.insert([env(1)]);
            throw new Error('rolled back');
          }).catch(() => undefined);
        } else if (o.k === 'spill') {
          clock += o.advance;
          repo.spill();
        } else if (o.k === 'crash') {
          crash();
          open();
          repo.recover();
        }
        for (const [d, queued] of model) {
          expect(guids(d)).toEqual(queued);
          // a page that starts in the middle of the queue, and a short one
          const mid = queued.length >> 1;
          if (mid > 0) expect(guids(d, seqOf.get(queued[mid - 1]!)!)).toEqual(queued.slice(mid));
          expect(guids(d, 0, 3)).toEqual(queued.slice(0, 3));
        }
      }
    }), { numRuns: 60 });
  });
});
