import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SottoError } from '../../src/errors.js';
import { openSqliteStorage } from '../../src/node/index.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { direct, message } from './fixtures.js';

/** The SQLite store's read caches must never show something the file does not hold. */
describe('SQLite read caches', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  async function path(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'sotto-cache-'));
    dirs.push(dir);
    return join(dir, 'c.db');
  }

  it('returns the committed bytes, follows overwrites and deletes, and matches the file after reopening', async () => {
    const file = await path();
    const storage = await openSqliteStorage(file);
    expect(await storage.getProtocolRecord('session', 'bob.1')).toBeUndefined(); // a cached miss...
    const first = new Uint8Array([1, 2, 3]);
    await storage.commit(new StorageBatch().protocolRecord('session', 'bob.1', first));
    // ...replaced by the commit; the very bytes committed come back (engines key caches on them)
    expect(await storage.getProtocolRecord('session', 'bob.1')).toBe(first);
    const second = new Uint8Array([4, 5]);
    await storage.commit(new StorageBatch().protocolRecord('session', 'bob.1', second).protocolRecord('preKey', '7', new Uint8Array([9])));
    expect(await storage.getProtocolRecord('session', 'bob.1')).toEqual(second);
    await storage.commit(new StorageBatch().protocolRecord('preKey', '7', null));
    expect(await storage.getProtocolRecord('preKey', '7')).toBeUndefined();
    await storage.close();
    const reopened = await openSqliteStorage(file);
    expect(await reopened.getProtocolRecord('session', 'bob.1')).toEqual(second);
    expect(await reopened.getProtocolRecord('preKey', '7')).toBeUndefined();
    await reopened.close();
  });

  it('is not changed by a commit that fails', async () => {
    const storage = await openSqliteStorage(await path());
    const kept = new Uint8Array([1]);
    await storage.commit(new StorageBatch().protocolRecord('session', 'bob.1', kept).markProcessed('g1', 1));
    expect(await storage.getProtocolRecord('session', 'bob.1')).toBe(kept);
    // the replay guard aborts the whole batch, ratchet change included
    const err = await storage
      .commit(new StorageBatch().protocolRecord('session', 'bob.1', new Uint8Array([2])).protocolRecord('session', 'carol.1', new Uint8Array([3])).requireUnprocessed('g1'))
      .catch((e: unknown) => e);
    expect(SottoError.is(err)).toBe(true);
    expect(await storage.getProtocolRecord('session', 'bob.1')).toEqual(new Uint8Array([1]));
    expect(await storage.getProtocolRecord('session', 'carol.1')).toBeUndefined();
    await storage.close();
    await expect(storage.getProtocolRecord('session', 'bob.1')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('keeps conversation reads equal to the file: commits, rolled-back batches, deletes, copies', async () => {
    const file = await path();
    const storage = await openSqliteStorage(file);
    expect(await storage.getConversation('d:bob')).toBeUndefined(); // a cached miss...
    await storage.commit(new StorageBatch().putConversation(direct('bob', { title: 'Bob' })));
    expect((await storage.getConversation('d:bob'))?.title).toBe('Bob'); // ...replaced by the commit

    // a copy each time: changing what a read returned changes nothing stored
    const read = (await storage.getConversation('d:bob'))!;
    read.title = 'changed by the caller';
    expect((await storage.getConversation('d:bob'))?.title).toBe('Bob');

    // a batch that fails after patching (and writing the row: a delete flushes held rows) leaves the committed record
    const failing = new StorageBatch().patchConversation('d:bob', { title: 'Robert' }).deleteConversation('d:nobody').patchMessage('missing', { seenAt: 1 });
    expect(SottoError.is(await storage.commit(failing).catch((e: unknown) => e), 'NOT_FOUND')).toBe(true);
    expect((await storage.getConversation('d:bob'))?.title).toBe('Bob');

    // a patch read back within the same batch, then committed
    await storage.commit(new StorageBatch().patchConversation('d:bob', { title: 'Robert' }).incrementUnread('d:bob', 2));
    expect(await storage.getConversation('d:bob')).toMatchObject({ title: 'Robert', unreadCount: 2 });
    await storage.commit(new StorageBatch().deleteConversation('d:bob'));
    expect(await storage.getConversation('d:bob')).toBeUndefined();
    await storage.commit(new StorageBatch().putConversation(direct('bob', { title: 'Bob again' })));
    await storage.close();

    const reopened = await openSqliteStorage(file);
    expect((await reopened.getConversation('d:bob'))?.title).toBe('Bob again');
    await reopened.close();
  });

  it('keeps message reads equal to the file, also around a cascading conversation delete that rolls back', async () => {
    const file = await path();
    const storage = await openSqliteStorage(file);
    await storage.commit(new StorageBatch().putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 1, { text: 'one' })));
    expect((await storage.getMessage('m1'))?.text).toBe('one');
    await storage.commit(new StorageBatch().patchMessage('m1', { reactions: { bob: { emoji: '👍', at: 2 } } }));
    expect((await storage.getMessage('m1'))?.reactions).toEqual({ bob: { emoji: '👍', at: 2 } });

    // inside this batch m1 is gone (the delete cascades), then the batch fails: m1 must still read
    const failing = new StorageBatch()
      .deleteConversation('d:bob')
      .patchMessage('m1', { seenAt: 3 }, { ifMissing: 'skip' })
      .patchMessage('missing', { seenAt: 3 });
    expect(SottoError.is(await storage.commit(failing).catch((e: unknown) => e), 'NOT_FOUND')).toBe(true);
    expect((await storage.getMessage('m1'))?.text).toBe('one');

    await storage.commit(new StorageBatch().deleteConversation('d:bob'));
    expect(await storage.getMessage('m1')).toBeUndefined();
    await storage.close();
  });
});
