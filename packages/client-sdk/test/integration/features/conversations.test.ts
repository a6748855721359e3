/**
 * Conversations list, open by username, history pages and full-text search, notification
 * settings: real relay, real clients (bob on SQLite so search runs on FTS5).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SottoError, type SottoClient } from '../../../src/index.js';
import { eventually, newClient, openSqliteStorage, startRelay, tempSqlite, type TestRelay } from '../../helpers/harness.js';
import type { SqliteStorage } from '../../../src/node/sqlite-storage.js';

describe('conversations and history', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  let carol: SottoClient;
  let bobStore: SqliteStorage;
  let bobDir: string;

  beforeAll(async () => {
    relay = await startRelay();
    const db = await tempSqlite();
    bobDir = db.dir;
    bobStore = await openSqliteStorage(db.path);
    alice = await newClient(relay.url, 'alice');
    bob = await newClient(relay.url, 'bob', { storage: bobStore });
    carol = await newClient(relay.url, 'carol');
  });

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await carol?.close();
    await bobStore?.close();
    await relay?.close();
    if (bobDir) await rm(bobDir, { recursive: true, force: true });
  });

  async function bobHas(text: string): Promise<boolean> {
    return (await bob.search(text.split(' ')[0]!)).some((m) => m.text === text);
  }

  it('opens a conversation by username, case-insensitively, and refuses unknown users with NOT_FOUND', async () => {
    const id = await alice.openConversation('BoB');
    expect(id).toBe('d:bob');
    expect(await alice.openConversation('bob')).toBe(id);
    const record = await alice.conversation(id);
    expect(record).toMatchObject({ peerAccountId: 'bob', isRequest: false, unreadCount: 0 });

    const err = await alice.openConversation('nobody_here').catch((e: unknown) => e);
    expect(SottoError.is(err)).toBe(true);
    expect(err).toMatchObject({ code: 'RELAY_ERROR', relayCode: 'NOT_FOUND' });
    expect(await alice.conversation('d:nobody_here')).toBeUndefined();
    await expect(alice.openConversation('Alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('lists conversations with preview, unread count, request and muted flags, by last activity', async () => {
    await alice.sendText(await alice.openConversation('bob'), 'first from alice');
    await alice.sendText(await alice.openConversation('bob'), 'second from alice ✨');
    await eventually(async () => (await bob.conversation('d:alice'))?.unreadCount === 2, 10_000, 'two unread from alice');
    await carol.sendText(await carol.openConversation('bob'), 'hello from carol');
    await eventually(async () => (await bob.conversation('d:carol'))?.unreadCount === 1, 10_000, 'carol unread');

    let list = await bob.conversations();
    expect(list.map((c) => c.id)).toEqual(['d:carol', 'd:alice']);
    expect(list[1]).toMatchObject({ lastMessagePreview: 'second from alice ✨', unreadCount: 2, isRequest: true, muted: false });
    expect(list[0]).toMatchObject({ lastMessagePreview: 'hello from carol', unreadCount: 1, isRequest: true });
    expect(await bob.conversations({ requests: false })).toEqual([]);

    // accept alice, mute carol; alice writes again and moves to the top
    await bob.acceptRequest('d:alice');
    await bob.setNotifications('d:carol', { muted: true });
    await alice.sendText('d:bob', 'third 🎉');
    await eventually(async () => (await bob.conversation('d:alice'))?.unreadCount === 3, 10_000, 'third unread');
    list = await bob.conversations();
    expect(list.map((c) => [c.id, c.isRequest, c.muted, c.unreadCount, c.lastMessagePreview])).toEqual([
      ['d:alice', false, false, 3, 'third 🎉'],
      ['d:carol', true, true, 1, 'hello from carol'],
    ]);
    expect((await bob.conversations({ requests: false })).map((c) => c.id)).toEqual(['d:alice']);
    expect((await bob.conversations({ requests: true })).map((c) => c.id)).toEqual(['d:carol']);

    const updates: [string, number][] = [];
    const off = bob.events.on('conversationUpdated', (c) => updates.push([c.id, c.unreadCount]));
    await bob.markSeen('d:alice');
    expect((await bob.conversation('d:alice'))?.unreadCount).toBe(0);
    expect((await bob.conversation('d:carol'))?.unreadCount).toBe(1);
    // a list showing the count learns it is 0; marking it seen again tells nothing new
    expect(updates).toEqual([['d:alice', 0]]);
    await bob.markSeen('d:alice');
    expect(updates).toEqual([['d:alice', 0]]);
    off();
  });

  it('searches conversations by name', async () => {
    expect((await bob.searchConversations('CAR')).map((c) => c.id)).toEqual(['d:carol']);
    expect((await bob.searchConversations('ali')).map((c) => c.id)).toEqual(['d:alice']);
    expect(await bob.searchConversations('zed')).toEqual([]);
  });

  it('persists per-conversation notification settings in the conversation record', async () => {
    const updated = bob.events.waitFor('conversationUpdated', (c) => c.id === 'd:alice' && !c.notifications.reactions);
    await bob.setNotifications('d:alice', { reactions: false, calls: false });
    await updated;
    expect(await bob.conversation('d:alice')).toMatchObject({ muted: false, notifications: { messages: true, reactions: false, calls: false } });
    await bob.setNotifications('d:alice', { messages: false, muted: true });
    expect(await bob.conversation('d:alice')).toMatchObject({ muted: true, notifications: { messages: false, reactions: false, calls: false } });
    await bob.setNotifications('d:alice', { muted: false });
    expect(await bob.conversation('d:alice')).toMatchObject({ muted: false, notifications: { messages: false, reactions: false, calls: false } });
    await expect(bob.setNotifications('d:nobody', { muted: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('pages history 50 at a time with no duplicates or gaps (120 messages), newest first', async () => {
    const chat = await carol.openConversation('bob');
    const sent: string[] = [];
    for (let i = 0; i < 120; i++) sent.push((await carol.sendText(chat, `page message ${i}`)).id);
    await eventually(async () => (await bob.conversation('d:carol'))?.unreadCount === 121, 30_000, '120 more messages at bob');

    const seen: string[] = [];
    const pages: number[] = [];
    let before: { sentAt: number; id: string } | undefined;
    let prev: { sentAt: number; id: string } | undefined;
    for (;;) {
      const page = await bob.messages('d:carol', before ? { before } : {});
      pages.push(page.messages.length);
      for (const m of page.messages) {
        if (prev) expect(m.sentAt < prev.sentAt || (m.sentAt === prev.sentAt && m.id < prev.id)).toBe(true);
        prev = { sentAt: m.sentAt, id: m.id };
        seen.push(m.id);
      }
      if (!page.next) break;
      before = page.next;
    }
    expect(pages).toEqual([50, 50, 21]);
    expect(new Set(seen).size).toBe(121);
    expect(seen.filter((id) => sent.includes(id)).sort()).toEqual([...sent].sort());
    // the newest is the last one carol sent
    expect((await bob.messages('d:carol', { limit: 1 })).messages[0]?.id).toBe(sent[119]);
  });

  it('searches full text within one conversation and across all', async () => {
    await alice.sendText('d:bob', 'Lunch at the café tomorrow?');
    await carol.sendText('d:bob', 'lunch plans are off');
    await eventually(async () => (await bobHas('Lunch at the café tomorrow?')) && (await bobHas('lunch plans are off')), 10_000, 'lunch messages');

    const all = await bob.search('lunch');
    expect(all.map((m) => m.text).sort()).toEqual(['Lunch at the café tomorrow?', 'lunch plans are off']);
    const inAlice = await bob.search('lunch', { conversationId: 'd:alice' });
    expect(inAlice.map((m) => m.text)).toEqual(['Lunch at the café tomorrow?']);
    expect((await bob.search('cafe tomo')).map((m) => m.senderAccountId)).toEqual(['alice']);
    expect((await bob.search('page message 119', { conversationId: 'd:carol' })).map((m) => m.text)).toEqual(['page message 119']);
    expect(await bob.search('lunch', { conversationId: 'd:nobody' })).toEqual([]);
    expect(await bob.search('xylophone')).toEqual([]);
  });
});
