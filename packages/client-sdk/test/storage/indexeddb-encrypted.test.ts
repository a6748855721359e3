import 'fake-indexeddb/auto';
import { decodeCbor } from '@sotto/protocol';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { IndexedDbStorage, openIndexedDbStorage, type IndexedDbStorageOptions } from '../../src/browser/index.js';
import { StorageBatch } from '../../src/storage/index.js';
import { runStorageConformance } from './conformance.js';
import { caught, expectMovedRecordsRefused, leakCase, leaksIn, SEARCH_QUERIES, SEARCH_TEXTS, seedBatch } from './encrypted-cases.js';
import { direct, message } from './fixtures.js';

let n = 0;
const fresh = (): { indexedDB: IDBFactory; name: string } => ({ indexedDB: new IDBFactory(), name: `sotto-enc-${n++}` });
const secret = (passphrase: string | Uint8Array = 'correct horse battery staple'): Pick<IndexedDbStorageOptions, 'passphrase' | 'insecureFastKdf'> => ({ passphrase, insecureFastKdf: true });

runStorageConformance('indexeddb, encrypted', async () => {
  const { indexedDB, name } = fresh();
  const storage = await openIndexedDbStorage(name, { indexedDB, ...secret() });
  return { storage, reopen: () => openIndexedDbStorage(name, { indexedDB, ...secret() }) };
});


/** The raw database, opened with the IndexedDB API alone (what another script in the profile sees). */
function raw(indexedDB: IDBFactory, name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Every row of every object store of the database. */
async function allRows(indexedDB: IDBFactory, name: string): Promise<Record<string, unknown[]>> {
  const db = await raw(indexedDB, name);
  const out: Record<string, unknown[]> = {};
  const stores = Array.from({ length: db.objectStoreNames.length }, (_, i) => db.objectStoreNames.item(i)!);
  const tx = db.transaction(stores, 'readonly');
  for (const s of stores) out[s] = await done(tx.objectStore(s).getAll());
  db.close();
  return out;
}

/** Changes rows of the closed store directly: `edit` runs in one readwrite transaction over `stores`. */
async function tamper(indexedDB: IDBFactory, name: string, stores: string[], edit: (tx: IDBTransaction) => Promise<void>): Promise<void> {
  const db = await raw(indexedDB, name);
  const tx = db.transaction(stores, 'readwrite');
  await edit(tx);
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

const get = (tx: IDBTransaction, store: string, key: IDBValidKey) => done(tx.objectStore(store).get(key)) as Promise<Record<string, unknown>>;
const put = async (tx: IDBTransaction, store: string, row: unknown): Promise<void> => void (await done(tx.objectStore(store).put(row)));

/** Every string and byte array inside a value, as bytes. */
function leaves(value: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (typeof value === 'string') out.push(new TextEncoder().encode(value));
  else if (value instanceof Uint8Array) out.push(value);
  else if (Array.isArray(value)) for (const v of value) leaves(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) leaves(v, out);
  return out;
}

async function seeded(indexedDB: IDBFactory, name: string, options = secret()): Promise<IndexedDbStorage> {
  const storage = await openIndexedDbStorage(name, { indexedDB, ...options });
  await storage.commit(seedBatch());
  return storage;
}

describe('encrypted IndexedDB storage', () => {
  it('keeps no plaintext of texts, contact names, search words or session state in any row', async () => {
    const { batch, needles, session } = leakCase();
    const write = async (indexedDB: IDBFactory, name: string, options: Pick<IndexedDbStorageOptions, 'passphrase' | 'insecureFastKdf'>) => {
      const storage = await openIndexedDbStorage(name, { indexedDB, ...options });
      await storage.commit(batch());
      return storage;
    };
    const leaks = (rows: Record<string, unknown[]>) => leaksIn(needles, leaves(rows));

    // Control: the plain store does hold them (the search words too), so the scan can see a leak.
    const p = fresh();
    await (await write(p.indexedDB, p.name, {})).close();
    expect(leaks(await allRows(p.indexedDB, p.name)).length).toBeGreaterThan(8);

    const e = fresh();
    const storage = await write(e.indexedDB, e.name, secret());
    expect(storage.encrypted).toBe(true);
    expect(leaks(await allRows(e.indexedDB, e.name))).toEqual([]);
    // ...and the API still finds everything.
    expect((await storage.searchMessages('lighthouse bak')).map((m) => m.id)).toEqual(['m1']);
    expect((await storage.searchConversations('kowal')).map((c) => c.id)).toEqual(['d:acc7f3e']);
    expect(await storage.getProtocolRecord('session', 'acc7f3e.1')).toEqual(session);
    expect((await storage.listCallLogs({ conversationId: 'd:acc7f3e' })).map((c) => c.callId)).toEqual(['c1']);
    await storage.close();
  });

  it('fails a wrong passphrase at open with NOT_ALLOWED and writes nothing', async () => {
    const { indexedDB, name } = fresh();
    await (await seeded(indexedDB, name)).close();
    const before = await allRows(indexedDB, name);
    const err = await caught(openIndexedDbStorage(name, { indexedDB, ...secret('not the passphrase') }));
    expect([err.code, err.field]).toEqual(['NOT_ALLOWED', 'passphrase']);
    expect(await allRows(indexedDB, name)).toEqual(before);
  });

  it('refuses an encrypted store without a passphrase, a plain store holding records with one, and an empty passphrase', async () => {
    const enc = fresh();
    await (await seeded(enc.indexedDB, enc.name)).close();
    const missing = await caught(openIndexedDbStorage(enc.name, { indexedDB: enc.indexedDB }));
    expect([missing.code, missing.field]).toEqual(['INVALID_ARGUMENT', 'passphrase']);

    const plain = fresh();
    await (await seeded(plain.indexedDB, plain.name, {})).close();
    const before = await allRows(plain.indexedDB, plain.name);
    const extra = await caught(openIndexedDbStorage(plain.name, { indexedDB: plain.indexedDB, ...secret() }));
    expect([extra.code, extra.field]).toEqual(['INVALID_ARGUMENT', 'passphrase']);
    expect(await allRows(plain.indexedDB, plain.name)).toEqual(before);
    const reopened = await openIndexedDbStorage(plain.name, { indexedDB: plain.indexedDB });
    expect(reopened.encrypted).toBe(false);
    expect((await reopened.getMessage('m1'))?.text).toBe('first words');
    await reopened.close();

    const empty = fresh();
    expect((await caught(openIndexedDbStorage(empty.name, { indexedDB: empty.indexedDB, passphrase: '' }))).code).toBe('INVALID_ARGUMENT');
    expect(await IndexedDbStorage.inspect(empty.name, { indexedDB: empty.indexedDB })).toBe('absent');
  });

  it('tells absent, plain and encrypted databases apart without creating one; a version-1 database is plain and opens', async () => {
    const { indexedDB } = fresh();
    expect(await IndexedDbStorage.inspect('none', { indexedDB })).toBe('absent');
    expect(await IndexedDbStorage.inspect('none', { indexedDB })).toBe('absent');
    expect((await indexedDB.databases()).map((d) => d.name)).toEqual([]); // inspecting created nothing
    await (await seeded(indexedDB, 'plain', {})).close();
    await (await seeded(indexedDB, 'enc')).close();
    expect(await IndexedDbStorage.inspect('plain', { indexedDB })).toBe('plain');
    expect(await IndexedDbStorage.inspect('enc', { indexedDB })).toBe('encrypted');

    // A database written by version 1 of the store (no `meta`), with a message in it.
    const v1 = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('v1', 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore('conversations', { keyPath: 'id' });
        const messages = db.createObjectStore('messages', { keyPath: 'id' });
        messages.createIndex('thread', ['c', 't']);
        messages.createIndex('words', 'w', { multiEntry: true });
        const ob = db.createObjectStore('outbox', { keyPath: 'id' });
        ob.createIndex('due', 'due');
        ob.createIndex('c', 'c');
        db.createObjectStore('processed', { keyPath: 'guid' }).createIndex('at', 'at');
        db.createObjectStore('settings', { keyPath: 'key' });
        db.createObjectStore('callLogs', { keyPath: 'callId' });
        db.createObjectStore('protocol', { keyPath: ['kind', 'key'] });
        const m = message('m1', 'd:acc1', 10, { text: 'kept from version one' });
        req.transaction!.objectStore('messages').put({ id: 'm1', c: 'd:acc1', t: 10, w: ['kept', 'from', 'version', 'one'], rec: m });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    v1.close();
    expect(await IndexedDbStorage.inspect('v1', { indexedDB })).toBe('plain');
    expect((await caught(openIndexedDbStorage('v1', { indexedDB, ...secret() }))).code).toBe('INVALID_ARGUMENT');
    const upgraded = await openIndexedDbStorage('v1', { indexedDB });
    expect((await upgraded.searchMessages('version')).map((m) => m.text)).toEqual(['kept from version one']);
    await upgraded.close();
  });

  it('fails a sealed record moved to another row or store, or a row with edited plain fields, with STORAGE_FAILED', async () => {
    const { indexedDB, name } = fresh();
    await (await seeded(indexedDB, name)).close();
    await tamper(indexedDB, name, ['messages', 'protocol', 'settings'], async (tx) => {
      const m1 = await get(tx, 'messages', 'm1');
      const m2 = await get(tx, 'messages', 'm2');
      await put(tx, 'messages', { ...m2, s: m1['s'] });
      const k1 = await get(tx, 'protocol', ['session', 'acc1.1']);
      await put(tx, 'protocol', { kind: 'session', key: 'acc1.2', s: k1['s'] });
      const s1 = await get(tx, 'settings', 's1');
      await put(tx, 'settings', { key: 's2', s: s1['s'] });
    });
    let storage = await openIndexedDbStorage(name, { indexedDB, ...secret() });
    await expectMovedRecordsRefused(storage, 'protocol');
    await storage.close();

    await tamper(indexedDB, name, ['messages', 'conversations', 'settings'], async (tx) => {
      const m1 = await get(tx, 'messages', 'm1');
      await put(tx, 'messages', { ...m1, t: 99 });
      const conv = await get(tx, 'conversations', 'd:acc1');
      await put(tx, 'conversations', { id: 'd:acc2', s: conv['s'] });
      await put(tx, 'settings', { key: 'copied', s: m1['s'] });
    });
    storage = await openIndexedDbStorage(name, { indexedDB, ...secret() });
    expect((await caught(storage.getMessage('m1'))).field).toBe('messages');
    expect((await caught(storage.getConversation('d:acc2'))).field).toBe('conversations');
    expect((await caught(storage.listConversations())).field).toBe('conversations');
    expect((await caught(storage.getSetting('copied'))).field).toBe('settings');
    await storage.close();
  });

  it('rejects a corrupt or weakened encryption header with STORAGE_FAILED or NOT_ALLOWED', async () => {
    const { indexedDB, name } = fresh();
    await (await seeded(indexedDB, name)).close();
    const header = (await allRows(indexedDB, name))['meta']![0] as { key: string; value: Uint8Array };
    const fields = decodeCbor(header.value) as Record<string, unknown>;
    expect(fields).toMatchObject({ v: 1, kdf: 'argon2id13', opslimit: 1, memlimit: 8192 });

    await tamper(indexedDB, name, ['meta'], (tx) => put(tx, 'meta', { key: 'encryption', value: new Uint8Array([0xa1, 0x61, 0x76, 0x01]) }));
    const corrupt = await caught(openIndexedDbStorage(name, { indexedDB, ...secret() }));
    expect([corrupt.code, corrupt.field]).toEqual(['STORAGE_FAILED', 'meta']);

    // An exhausting cost is refused before any derivation.
    const { encodeCbor } = await import('@sotto/protocol');
    await tamper(indexedDB, name, ['meta'], (tx) => put(tx, 'meta', { key: 'encryption', value: encodeCbor({ ...fields, memlimit: 2 ** 40 }) }));
    expect((await caught(openIndexedDbStorage(name, { indexedDB, ...secret() }))).field).toBe('meta');
    // A lowered cost is bound to the wrapped key: it fails like a wrong passphrase.
    await tamper(indexedDB, name, ['meta'], (tx) => put(tx, 'meta', { key: 'encryption', value: encodeCbor({ ...fields, opslimit: 2 }) }));
    expect((await caught(openIndexedDbStorage(name, { indexedDB, ...secret() }))).code).toBe('NOT_ALLOWED');
  });

  it('changes the passphrase without re-encrypting; the old one then fails', async () => {
    const { indexedDB, name } = fresh();
    const storage = await seeded(indexedDB, name, secret('old passphrase'));
    const before = (await allRows(indexedDB, name))['messages'];
    const wrong = await caught(storage.changePassphrase('not it', 'new passphrase'));
    expect([wrong.code, wrong.field]).toEqual(['NOT_ALLOWED', 'passphrase']);
    await storage.changePassphrase('old passphrase', 'new passphrase');
    expect((await storage.getMessage('m1'))?.text).toBe('first words');
    await storage.commit(new StorageBatch().setSetting('after', true));
    await storage.close();

    expect((await caught(openIndexedDbStorage(name, { indexedDB, ...secret('old passphrase') }))).code).toBe('NOT_ALLOWED');
    const reopened = await openIndexedDbStorage(name, { indexedDB, ...secret('new passphrase') });
    expect((await reopened.getMessage('m2'))?.text).toBe('second words');
    expect(await reopened.getSetting('after')).toBe(true);
    await reopened.close();
    expect((await allRows(indexedDB, name))['messages']).toEqual(before);

    const p = fresh();
    const plain = await openIndexedDbStorage(p.name, { indexedDB: p.indexedDB });
    expect((await caught(plain.changePassphrase('a', 'b'))).code).toBe('UNSUPPORTED');
    await plain.close();
  });

  it('accepts a byte passphrase and the same text passphrase in another Unicode normal form', async () => {
    const { indexedDB } = fresh();
    await (await seeded(indexedDB, 'text', secret('caf\u00e9 au lait'))).close();
    await (await openIndexedDbStorage('text', { indexedDB, ...secret('cafe\u0301 au lait') })).close();
    await (await seeded(indexedDB, 'bytes', secret(new Uint8Array([0, 1, 2, 255])))).close();
    expect((await caught(openIndexedDbStorage('bytes', { indexedDB, ...secret(new Uint8Array([0, 1, 2, 254])) }))).code).toBe('NOT_ALLOWED');
    await (await openIndexedDbStorage('bytes', { indexedDB, ...secret(new Uint8Array([0, 1, 2, 255])) })).close();
  });

  it('searches the blind index like the plain store, beyond the indexed prefix length too', async () => {
    const results = async (options: Pick<IndexedDbStorageOptions, 'passphrase' | 'insecureFastKdf'>) => {
      const { indexedDB, name } = fresh();
      const storage = await openIndexedDbStorage(name, { indexedDB, ...options });
      let b = new StorageBatch().putConversation(direct('acc1')).putConversation(direct('acc2'));
      for (const [id, text] of SEARCH_TEXTS) b = b.putMessage(message(id, id === 'm3' ? 'd:acc2' : 'd:acc1', Number(id.slice(1)), { text }));
      await storage.commit(b);
      const out: Record<string, string[]> = {};
      for (const q of SEARCH_QUERIES) out[q] = (await storage.searchMessages(q)).map((m) => m.id);
      out['in acc2'] = (await storage.searchMessages('international', { conversationId: 'd:acc2' })).map((m) => m.id);
      await storage.close();
      return out;
    };
    const plain = await results({});
    expect(plain['internationalization']).toEqual(['m2', 'm1']);
    expect(plain['internationalizationz']).toEqual([]);
    expect(plain['in acc2']).toEqual(['m3']);
    expect(await results(secret())).toEqual(plain);
  });

  it('finishes the commits and reads in flight before close wipes the keys', async () => {
    const { indexedDB, name } = fresh();
    const storage = await seeded(indexedDB, name);
    const commit = storage.commit(new StorageBatch().putMessage(message('m3', 'd:acc1', 30, { text: 'written while closing' })));
    const read = storage.getMessage('m1');
    await storage.close();
    await commit;
    expect((await read)?.text).toBe('first words');
    const reopened = await openIndexedDbStorage(name, { indexedDB, ...secret() });
    expect((await reopened.getMessage('m3'))?.text).toBe('written while closing');
    await reopened.close();
  });

  it('derives with Argon2id at 64 MiB and three passes unless told otherwise', async () => {
    const { indexedDB, name } = fresh();
    const storage = await openIndexedDbStorage(name, { indexedDB, passphrase: 'a real passphrase' });
    await storage.close();
    const header = (await allRows(indexedDB, name))['meta']![0] as { value: Uint8Array };
    expect(decodeCbor(header.value)).toMatchObject({ kdf: 'argon2id13', opslimit: 3, memlimit: 64 * 1024 * 1024 });
    expect((await caught(openIndexedDbStorage(name, { indexedDB, passphrase: 'a real passphrasE' }))).code).toBe('NOT_ALLOWED');
  });
});
