/**
 * The commit journal of the SQLite store (see `SqliteStorage`, `CommitJournal`): relaxed commits
 * wait in an open SQLite transaction and in `<path>-pending`. These tests take crash images (the
 * database, its WAL and the journal copied while the store is open, as a SIGKILL would leave
 * them) and open them, so every crash point is reproducible; `faults/crash-after-send.test.ts`
 * kills a real process.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { encodeCborLocal } from '@sotto/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStorage, type SqliteStorage } from '../../src/node/index.js';
import { StorageBatch } from '../../src/storage/index.js';
import { copyCrashImage } from './crash-image.js';
import { direct, message } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sotto-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `store-${n++}.db`);
const HEADER = 12;

/** What a kill at this instant leaves on disk, copied to a new path (the store stays open). */
function crashImage(path: string): string {
  return copyCrashImage(path, freshPath());
}

/** A store with conversation d:bob committed (strict), and `relaxed` relaxed commits after it, each adding m<i> and one unread. */
async function storeWithRelaxed(relaxed: number, options: { passphrase?: string } = {}): Promise<{ path: string; storage: SqliteStorage }> {
  const path = freshPath();
  const storage = await openSqliteStorage(path, { ...options, insecureFastKdf: true, relaxedSyncMs: 60_000 });
  await storage.commit(new StorageBatch().putConversation(direct('bob')));
  for (let i = 0; i < relaxed; i++) {
    await storage.commit(new StorageBatch().putMessage(message(`m${i}`, 'd:bob', i + 1, { text: `secret words ${i}` })).incrementUnread('d:bob', 1), { durability: 'relaxed' });
  }
  return { path, storage };
}

async function contents(path: string, options: { passphrase?: string } = {}): Promise<{ ids: string[]; unread: number | undefined }> {
  const storage = await openSqliteStorage(path, { ...options, insecureFastKdf: true });
  try {
    const ids = (await storage.listMessages('d:bob')).map((m) => m.id).sort();
    return { ids, unread: (await storage.getConversation('d:bob'))?.unreadCount };
  } finally {
    await storage.close();
  }
}

describe('SQLite commit journal', () => {
  it('keeps relaxed commits across a crash, applies them once, and leaves no journal after a clean close', async () => {
    const { path, storage } = await storeWithRelaxed(3);
    expect(storage.syncPending).toBe(true);
    expect(statSync(`${path}-pending`).size).toBeGreaterThan(HEADER);
    const image = crashImage(path);
    await storage.close();
    expect(existsSync(`${path}-pending`)).toBe(false);

    // the image: the committed database holds none of the three, the journal all of them
    expect(await contents(image)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 3 });
    expect(existsSync(`${image}-pending`)).toBe(false);
    expect(await contents(image)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 3 }); // not applied twice
    expect(await contents(path)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 3 });
  });

  it('ignores a journal whose commit already landed (a crash between COMMIT and emptying the journal)', async () => {
    const { path, storage } = await storeWithRelaxed(3);
    const stale = readFileSync(`${path}-pending`);
    await storage.commit(new StorageBatch().setSetting('k', 1)); // strict: COMMITs the three
    const image = crashImage(path);
    writeFileSync(`${image}-pending`, stale); // as if the kill came before the journal was emptied
    await storage.close();
    expect(await contents(image)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 3 });
  });

  it('applies whole entries up to a torn tail and drops the rest', async () => {
    const { path, storage } = await storeWithRelaxed(3);
    const image = crashImage(path);
    await storage.close();
    truncateSync(`${image}-pending`, statSync(`${image}-pending`).size - 5);
    expect(await contents(image)).toEqual({ ids: ['m0', 'm1'], unread: 2 });
  });

  it('undoes only a failed batch: the relaxed commits before it stay, in the store and in the journal', async () => {
    const { path, storage } = await storeWithRelaxed(2);
    const failing = new StorageBatch().putMessage(message('m9', 'd:bob', 9)).incrementUnread('d:bob', 5).patchMessage('missing', { seenAt: 1 });
    await expect(storage.commit(failing, { durability: 'relaxed' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.commit(failing)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await storage.listMessages('d:bob')).map((m) => m.id).sort()).toEqual(['m0', 'm1']);
    expect((await storage.getConversation('d:bob'))?.unreadCount).toBe(2);
    await storage.commit(new StorageBatch().putMessage(message('m2', 'd:bob', 3)), { durability: 'relaxed' });
    const image = crashImage(path);
    await storage.close();
    expect(await contents(image)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 2 });
    expect(await contents(path)).toEqual({ ids: ['m0', 'm1', 'm2'], unread: 2 });
  });

  it('seals the journal of an encrypted store: no plaintext, and an altered entry ends the replay there', async () => {
    const passphrase = 'journal passphrase';
    const { path, storage } = await storeWithRelaxed(3, { passphrase });
    const image = crashImage(path);
    await storage.close();
    const journal = readFileSync(`${image}-pending`);
    expect(journal.includes(Buffer.from('secret words'))).toBe(false);
    expect(journal.includes(Buffer.from('d:bob'))).toBe(false);

    // flip one byte inside the second entry (its CRC is fixed up, so only the seal can tell)
    const { crc32 } = await import('node:zlib');
    const first = journal.readUInt32BE(HEADER);
    const second = HEADER + 8 + first;
    const length = journal.readUInt32BE(second);
    journal.writeUInt8(journal.readUInt8(second + 8 + 10) ^ 0x01, second + 8 + 10);
    journal.writeUInt32BE(crc32(journal.subarray(second + 8, second + 8 + length)), second + 4);
    writeFileSync(`${image}-pending`, journal);
    expect(await contents(image, { passphrase })).toEqual({ ids: ['m0'], unread: 1 });
  });

  it('reads a row that waits for the COMMIT after the record cache dropped it, and writes it at the COMMIT', async () => {
    const { path, storage } = await storeWithRelaxed(1); // m0, held in the open transaction
    await storage.commit(new StorageBatch().patchMessage('m0', { seenAt: 77 }).patchConversation('d:bob', { muted: true }), { durability: 'relaxed' });
    // more messages than the record cache keeps, so m0 leaves it while still held
    for (let i = 1; i <= 600; i++) await storage.commit(new StorageBatch().putMessage(message(`n${i}`, 'd:bob', 100 + i)), { durability: 'relaxed' });
    expect((await storage.getMessage('m0'))?.seenAt).toBe(77);
    expect((await storage.listMessages('d:bob', { limit: 1000 })).find((m) => m.id === 'm0')?.seenAt).toBe(77);
    expect((await storage.listConversations())[0]).toMatchObject({ id: 'd:bob', muted: true, unreadCount: 1 });
    const image = crashImage(path);
    await storage.commit(new StorageBatch().setSetting('k', 1)); // COMMITs, writing every held row once
    await storage.close();
    for (const p of [image, path]) {
      const reopened = await openSqliteStorage(p);
      expect((await reopened.getMessage('m0'))?.seenAt).toBe(77);
      expect(await reopened.getConversation('d:bob')).toMatchObject({ muted: true, unreadCount: 1 });
      expect((await reopened.listMessages('d:bob', { limit: 1000 })).length).toBe(601);
      await reopened.close();
    }
  });

  it('leaves out, whole, a journal entry that fails when applied at open, and applies the ones around it', async () => {
    const { path, storage } = await storeWithRelaxed(1); // entry 0: m0
    const image = crashImage(path);
    await storage.close();
    const entry = (ops: StorageBatch) => {
      const payload = Buffer.from(encodeCborLocal(ops.ops));
      const head = Buffer.alloc(8);
      head.writeUInt32BE(payload.length, 0);
      head.writeUInt32BE(crc32(payload), 4);
      return Buffer.concat([head, payload]);
    };
    const failing = new StorageBatch().putMessage(message('x1', 'd:bob', 50)).incrementUnread('d:bob', 5).patchMessage('missing', { seenAt: 1 });
    const fine = new StorageBatch().putMessage(message('x2', 'd:bob', 60));
    writeFileSync(`${image}-pending`, Buffer.concat([readFileSync(`${image}-pending`), entry(failing), entry(fine)]));
    expect(await contents(image)).toEqual({ ids: ['m0', 'x2'], unread: 1 });
  });

  it('keeps relaxed commits of an in-memory store in its open transaction, with no journal file', async () => {
    const storage = await openSqliteStorage(':memory:');
    await storage.commit(new StorageBatch().putConversation(direct('bob')), { durability: 'relaxed' });
    await storage.commit(new StorageBatch().putMessage(message('m0', 'd:bob', 1)), { durability: 'relaxed' });
    expect((await storage.listMessages('d:bob')).map((m) => m.id)).toEqual(['m0']);
    await storage.close();
    expect(existsSync(':memory:-pending')).toBe(false);
  });
});
