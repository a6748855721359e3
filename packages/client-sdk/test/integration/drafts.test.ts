/**
 * Drafts: what the user typed and has not sent stays with the conversation on this device: across
 * a restart, in an encrypted store sealed like the rest, never at the relay or on another device
 * of the account (not even in a link's history transfer).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, SottoClient, type ConversationRecord } from '../../src/index.js';
import { allFiles, clientOptions, eventually, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../helpers/harness.js';

let relay: TestRelay;
const clients: SottoClient[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await relay.close();
});

describe('drafts', () => {
  it('are kept per conversation on this device, across a restart, sealed in an encrypted store', async () => {
    const db = await tempSqlite();
    try {
      const storage = await openSqliteStorage(db.path, { passphrase: 'correct horse' });
      const ann = await SottoClient.register(clientOptions(relay.url, storage), 'ann');
      await ann.connect();
      const ben = await newClient(relay.url, 'ben');
      clients.push(ben);
      const chat = await ann.openConversation('ben');
      await ann.sendText(chat, 'first');
      const before = (await ann.conversations()).map((c) => c.id);

      const updates: ConversationRecord[] = [];
      ann.events.on('conversationUpdated', (c) => updates.push(c));
      await ann.setDraft(chat, 'half a thought about the 42nd marmot');
      expect((await ann.conversation(chat))?.draft).toBe('half a thought about the 42nd marmot');
      expect(updates.at(-1)?.draft).toBe('half a thought about the 42nd marmot');
      // the list keeps its order; nothing was sent
      expect((await ann.conversations()).map((c) => c.id)).toEqual(before);
      expect((await ann.messages(chat)).messages.map((m) => m.text)).toEqual(['first']);

      // bad input changes nothing
      await expect(ann.setDraft(chat, 'x'.repeat(16_385))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'text' });
      await expect(ann.setDraft('d:nobody', 'hello')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect((await ann.conversation(chat))?.draft).toBe('half a thought about the 42nd marmot');

      // in the store's file only sealed; back after a restart
      await ann.close();
      await storage.close();
      const files = await allFiles(db.dir);
      for (const [name, bytes] of files) expect(bytes.includes(Buffer.from('42nd marmot')), name).toBe(false);
      const reopened = await SottoClient.open(clientOptions(relay.url, await openSqliteStorage(db.path, { passphrase: 'correct horse' })));
      clients.push(reopened);
      expect((await reopened.conversation(chat))?.draft).toBe('half a thought about the 42nd marmot');

      // white space alone, or the empty text once it is sent, removes it
      await reopened.setDraft(chat, '   ');
      expect((await reopened.conversation(chat))?.draft).toBeUndefined();
      await reopened.setDraft(chat, 'again');
      await reopened.sendText(chat, 'again');
      await reopened.setDraft(chat, '');
      expect((await reopened.conversation(chat))?.draft).toBeUndefined();
      await eventually(async () => (await ben.messages('d:ann')).messages.some((m) => m.text === 'again'), 10_000, 'ben receives');
    } finally {
      await rm(db.dir, { recursive: true, force: true });
    }
  });

  it('never reach the relay or another device of the account, not even with the history of a link', async () => {
    const cat = await newClient(relay.url, 'cat');
    const dan = await newClient(relay.url, 'dan');
    clients.push(cat, dan);
    const chat = await cat.openConversation('dan');
    await cat.sendText(chat, 'hello dan');
    await eventually(async () => (await dan.messages('d:cat')).messages.length === 1, 10_000, 'dan receives');
    await cat.setDraft(chat, 'an unsent word: quokka');

    const link = await SottoClient.link(clientOptions(relay.url, new MemoryStorage()));
    const completing = link.complete({ timeoutMs: 20_000 });
    await cat.approveLink(link.code, { transferHistory: true });
    const cat2 = (await completing).client;
    clients.push(cat2);
    await cat2.connect();
    await eventually(async () => (await cat2.messages(chat)).messages.some((m) => m.text === 'hello dan'), 10_000, 'the history arrives');
    expect((await cat2.conversation(chat))?.draft).toBeUndefined();
    expect((await cat.conversation(chat))?.draft).toBe('an unsent word: quokka');
    // nothing the relay keeps holds it
    const files = await allFiles(relay.dir);
    for (const [name, bytes] of files) expect(bytes.includes(Buffer.from('quokka')), name).toBe(false);
  });
});
