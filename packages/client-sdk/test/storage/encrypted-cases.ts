/** What the tests of both encrypted stores (SQLite and IndexedDB) write and look for. */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { SottoError } from '../../src/errors.js';
import { StorageBatch, type Storage } from '../../src/storage/index.js';
import { callLog, direct, group, message, outbox } from './fixtures.js';

/** Two messages, settings and protocol records of one conversation: what the tampering tests edit. */
export function seedBatch(): StorageBatch {
  return new StorageBatch()
    .putConversation(direct('acc1', { title: 'Bob' }))
    .putMessage(message('m1', 'd:acc1', 10, { text: 'first words' }))
    .putMessage(message('m2', 'd:acc1', 20, { text: 'second words' }))
    .setSetting('s1', 'one')
    .setSetting('s2', 'two')
    .protocolRecord('session', 'acc1.1', new Uint8Array([1, 1]))
    .protocolRecord('session', 'acc1.2', new Uint8Array([2, 2]));
}

/**
 * A batch of every kind of record, with texts, names and key material to look for in what a
 * store writes (`needles`: none may be found in an encrypted store, most in a plain one).
 */
export function leakCase(): { batch: () => StorageBatch; needles: Buffer[]; session: Uint8Array } {
  const session = new Uint8Array(randomBytes(48));
  const identity = new Uint8Array(randomBytes(40));
  const plaintexts = [
    'Meet me at the Lighthouse Bakery at seven',
    'Lighthouse',
    'Bakery',
    'lighthouse',
    'bakery',
    'Zoë Kowalczyk',
    'Kowalczyk',
    'zoe_kowalczyk_99',
    'Ottoline Quarrington',
    'Quarrington',
    'Blue Heron Climbing Crew',
    'ultramarine-theme-preference',
    'outbox payload phrase',
  ];
  const batch = (): StorageBatch => new StorageBatch()
    .putConversation(direct('acc7f3e', { title: 'Zoë Kowalczyk', peerUsername: 'zoe_kowalczyk_99', lastMessagePreview: 'Meet me at the Lighthouse Bakery at seven' }))
    .putConversation(direct('acc91b2', { title: 'Ottoline Quarrington' }))
    .putConversation({ ...group('ab12'), title: 'Blue Heron Climbing Crew', groupState: new Uint8Array([7]) })
    .putMessage(message('m1', 'd:acc7f3e', 10, { text: 'Meet me at the Lighthouse Bakery at seven' }))
    .putOutbox(outbox('o1', 5, { conversationId: 'd:acc7f3e', payload: new TextEncoder().encode('outbox payload phrase') }))
    .setSetting('theme', 'ultramarine-theme-preference')
    .putCallLog(callLog('c1', 7, { conversationId: 'd:acc7f3e' }))
    .protocolRecord('session', 'acc7f3e.1', session)
    .protocolRecord('identity', 'local', identity);
  return { batch, needles: [...plaintexts.map((t) => Buffer.from(t)), Buffer.from(session), Buffer.from(identity)], session };
}

/** The needles found in any of `haystacks`, as text. */
export function leaksIn(needles: Buffer[], haystacks: Uint8Array[]): string[] {
  const hay = haystacks.map((h) => Buffer.from(h.buffer, h.byteOffset, h.byteLength));
  return needles.filter((needle) => hay.some((h) => h.includes(needle))).map(String);
}

/** Message texts and queries on which a blind index must find what the plain store finds. */
export const SEARCH_TEXTS: readonly [string, string][] = [
  ['m1', 'Internationalization matters'],
  ['m2', 'internationalizations everywhere'],
  ['m3', 'an international call'],
  ['m4', 'Ünïcödé façade'],
];
export const SEARCH_QUERIES = ['internationalization', 'internationalizationz', 'internationalizations', 'international', 'INTER call', 'unicode', 'facade', 'fa', 'matters international', 'nothing'];

export async function caught(promise: Promise<unknown>): Promise<SottoError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(SottoError.is(err), `expected a SottoError, got ${String(err)}`).toBe(true);
  return err as SottoError;
}

/**
 * After m1's sealed record was put in m2's row, session acc1.1's in acc1.2's and setting s1's in
 * s2's (a store seeded with {@link seedBatch}): each moved record fails with STORAGE_FAILED and
 * its table as `field`, untouched ones still read, and a batch that reads a bad row commits
 * nothing. `protocolTable` is the store's name for protocol records.
 */
export async function expectMovedRecordsRefused(storage: Storage, protocolTable: string): Promise<void> {
  const moved = await caught(storage.getMessage('m2'));
  expect([moved.code, moved.field]).toEqual(['STORAGE_FAILED', 'messages']);
  expect((await caught(storage.listMessages('d:acc1'))).code).toBe('STORAGE_FAILED');
  expect((await caught(storage.searchMessages('words'))).code).toBe('STORAGE_FAILED');
  expect((await caught(storage.getProtocolRecord('session', 'acc1.2'))).field).toBe(protocolTable);
  expect((await caught(storage.getSetting('s2'))).field).toBe('settings');
  expect((await storage.getMessage('m1'))?.text).toBe('first words');
  expect(await storage.getProtocolRecord('session', 'acc1.1')).toEqual(new Uint8Array([1, 1]));
  expect(await storage.getSetting('s1')).toBe('one');
  const failed = await caught(storage.commit(new StorageBatch().setSetting('s3', 3).patchMessage('m2', { seenAt: 30 })));
  expect(failed.code).toBe('STORAGE_FAILED');
  expect(await storage.getSetting('s3')).toBeUndefined();
}
