import { stageStores } from '@sotto/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SottoError } from '../../src/errors.js';
import {
  localIdentityChange,
  readProtocolStores,
  StorageBatch,
  type MessageRecord,
  type Storage,
} from '../../src/storage/index.js';
import { callLog, direct, group, message, outbox } from './fixtures.js';

export interface OpenedStorage {
  storage: Storage;
  /** Open the same data again (the current handle is closed first by the suite). */
  reopen?: () => Promise<Storage>;
}

async function expectCode(promise: Promise<unknown>, code: SottoError['code']): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(SottoError.is(err), `expected SottoError ${code}, got ${String(err)}`).toBe(true);
  expect((err as SottoError).code).toBe(code);
}

const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

/**
 * The storage conformance suite: every backend runs it and must pass unchanged.
 * @example
 * runStorageConformance('memory', async () => { const s = new MemoryStorage(); return { storage: s, reopen: async () => s.reopen() }; });
 */
export function runStorageConformance(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`Storage conformance: ${name}`, () => {
    let opened: OpenedStorage;
    let storage: Storage;

    beforeEach(async () => {
      opened = await open();
      storage = opened.storage;
    });
    afterEach(async () => {
      await storage.close();
    });

    const commit = (build: (b: StorageBatch) => StorageBatch) => storage.commit(build(new StorageBatch()));

    it('stores, patches and deletes conversations', async () => {
      await commit((b) => b.putConversation(direct('bob', { title: 'Bob', lastMessagePreview: 'hi' })).putConversation(group('ab01')));
      expect(await storage.getConversation('d:bob')).toEqual(direct('bob', { title: 'Bob', lastMessagePreview: 'hi' }));
      const g = await storage.getConversation('g:ab01');
      expect(g?.groupState).toEqual(new Uint8Array([1, 2, 3]));
      expect(g?.groupState?.constructor).toBe(Uint8Array);

      await commit((b) => b.patchConversation('d:bob', { muted: true, title: null, updatedAt: 2_000, requestState: 'accepted' }));
      const bob = await storage.getConversation('d:bob');
      expect(bob).toMatchObject({ muted: true, updatedAt: 2_000, requestState: 'accepted', lastMessagePreview: 'hi' });
      expect(bob && 'title' in bob).toBe(false);

      await commit((b) => b.putMessage(message('m1', 'd:bob', 5)).putOutbox(outbox('o1', 0)).deleteConversation('d:bob'));
      expect(await storage.getConversation('d:bob')).toBeUndefined();
      expect(await storage.getMessage('m1')).toBeUndefined();
      expect(await storage.listOutbox()).toEqual([]);
      expect(await storage.getConversation('g:ab01')).toBeDefined();
    });

    it('rejects malformed records and fixed-field patches with INVALID_ARGUMENT', async () => {
      await expectCode(commit((b) => b.putConversation({ ...direct('bob'), id: 'd:carol' })), 'INVALID_ARGUMENT');
      await expectCode(commit((b) => b.putConversation(group('not-hex'))), 'INVALID_ARGUMENT');
      await expectCode(commit((b) => b.putConversation(direct('bob', { createdAt: 1.5 }))), 'INVALID_ARGUMENT');
      await commit((b) => b.putConversation(direct('bob')));
      await expectCode(commit((b) => b.putMessage(message('m1', 'd:bob', 5, { sentAt: -1 }))), 'INVALID_ARGUMENT');
      await expectCode(commit((b) => b.patchConversation('d:bob', { id: 'd:x' } as never)), 'INVALID_ARGUMENT');
      await expectCode(commit((b) => b.putOutbox(outbox('', 0))), 'INVALID_ARGUMENT');
      await expectCode(commit((b) => b.putCallLog(callLog('c1', 1, { type: 'fax' as never }))), 'INVALID_ARGUMENT');
    });

    it('checks optional fields when present, and names the field', async () => {
      await commit((b) => b.putConversation(direct('bob')));
      const bad: [() => Promise<void>, string][] = [
        [() => commit((b) => b.putConversation(direct('bob', { requestState: 'maybe' as never }))), 'conversation.requestState'],
        [() => commit((b) => b.putConversation(direct('bob', { lastMessageAt: -5 }))), 'conversation.lastMessageAt'],
        [() => commit((b) => b.putConversation(direct('bob', { avatar: 'png' as never }))), 'conversation.avatar'],
        [() => commit((b) => b.putMessage(message('m1', 'd:bob', 5, { text: 7 as never }))), 'message.text'],
        [() => commit((b) => b.putMessage(message('m1', 'd:bob', 5, { status: { bob: { state: 'lost', at: 1 } } as never }))), 'message.status'],
        [() => commit((b) => b.putMessage(message('m1', 'd:bob', 5, { status: { bob: null } as never }))), 'message.status'],
        [() => commit((b) => b.putMessage(message('m1', 'd:bob', 5, { reactions: { bob: { emoji: '', at: 1 } } }))), 'message.reactions'],
        [() => commit((b) => b.putMessage(message('m1', 'd:bob', 5, { reactions: [] as never }))), 'message.reactions'],
        [() => commit((b) => b.putOutbox(outbox('o1', 0, { lastError: 3 as never }))), 'outbox.lastError'],
        [() => commit((b) => b.putCallLog(callLog('c1', 1, { endedAt: -1 }))), 'callLog.endedAt'],
      ];
      for (const [attempt, field] of bad) {
        const err = await attempt().then(() => undefined, (e: unknown) => e as { code?: string; field?: string });
        expect([err?.code, err?.field]).toEqual(['INVALID_ARGUMENT', field]);
      }
      // present and valid, or absent: accepted
      await commit((b) => b.putMessage(message('m1', 'd:bob', 5, { text: 'hi', status: { bob: { state: 'read', at: 9 } }, reactions: { bob: { emoji: '👍', at: 2 } } })));
      expect((await storage.getMessage('m1'))?.status).toEqual({ bob: { state: 'read', at: 9 } });
    });

    it('stores messages only in existing conversations and fails patches of missing records', async () => {
      await expectCode(commit((b) => b.putMessage(message('m1', 'd:nobody', 5))), 'NOT_FOUND');
      await expectCode(commit((b) => b.patchMessage('missing', { seenAt: 1 })), 'NOT_FOUND');
      await expectCode(commit((b) => b.patchConversation('d:missing', { muted: true })), 'NOT_FOUND');
      await expectCode(commit((b) => b.incrementUnread('d:missing', 1)), 'NOT_FOUND');
      await commit((b) => b.patchMessage('missing', { seenAt: 1 }, { ifMissing: 'skip' }).setSetting('k', 1));
      expect(await storage.getSetting('k')).toBe(1);
      await commit((b) => b.putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 5)));
      expect(await storage.getMessage('m1')).toEqual(message('m1', 'd:bob', 5));
      await commit((b) => b.putConversation(direct('carol')));
      await expectCode(commit((b) => b.putMessage(message('m1', 'd:carol', 5))), 'CONFLICT');
    });

    it('applies nothing of a batch whose last op fails', async () => {
      await commit((b) => b.putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 5)));
      const failing = new StorageBatch()
        .putConversation(direct('carol'))
        .patchConversation('d:bob', { unreadCount: 7 })
        .putMessage(message('m2', 'd:bob', 6))
        .patchMessage('m1', { reactions: { bob: { emoji: '❤️', at: 9 } } })
        .deleteMessage('m1')
        .putOutbox(outbox('o1', 0))
        .markProcessed('guid-1', 10)
        .setSetting('readReceipts', false)
        .putCallLog(callLog('call-1', 10))
        .protocolRecord('session', 'bob.1', new Uint8Array([1]))
        .patchMessage('missing', { seenAt: 1 });
      await expectCode(storage.commit(failing), 'NOT_FOUND');
      expect(await storage.getConversation('d:carol')).toBeUndefined();
      expect((await storage.getConversation('d:bob'))?.unreadCount).toBe(0);
      expect(await storage.getMessage('m2')).toBeUndefined();
      expect(await storage.getMessage('m1')).toEqual(message('m1', 'd:bob', 5));
      expect(await storage.listOutbox()).toEqual([]);
      expect(await storage.isProcessed('guid-1')).toBe(false);
      expect(await storage.getSetting('readReceipts')).toBeUndefined();
      expect(await storage.listCallLogs()).toEqual([]);
      expect(await storage.getProtocolRecord('session', 'bob.1')).toBeUndefined();
      expect(await storage.searchMessages('m2')).toEqual([]);
      expect(ids(await storage.searchMessages('m1'))).toEqual(['m1']);
    });

    it('guards replays with requireUnprocessed, atomically', async () => {
      await commit((b) => b.putConversation(direct('bob')));
      const receive = (id: string) =>
        new StorageBatch().requireUnprocessed('g1').putMessage(message(id, 'd:bob', 5)).incrementUnread('d:bob').markProcessed('g1', 50);
      await storage.commit(receive('m1'));
      await expectCode(storage.commit(receive('m1-again')), 'CONFLICT');
      expect(await storage.getMessage('m1-again')).toBeUndefined();
      expect((await storage.getConversation('d:bob'))?.unreadCount).toBe(1);
      expect(await storage.isProcessed('g1')).toBe(true);
      expect(await storage.isProcessed('g2')).toBe(false);
      await commit((b) => b.markProcessed('g2', 80).forgetProcessedBefore(60));
      expect(await storage.isProcessed('g1')).toBe(false);
      expect(await storage.isProcessed('g2')).toBe(true);
    });

    it('pages a thread 50 at a time, newest first, with a stable cursor over equal timestamps', async () => {
      const all: MessageRecord[] = [];
      for (let i = 0; i < 130; i++) all.push(message(`m${String(i).padStart(3, '0')}`, 'd:bob', 1_000 + Math.floor(i / 7)));
      await commit((b) => {
        b.putConversation(direct('bob')).putConversation(direct('carol'));
        for (const m of [...all].reverse()) b.putMessage(m);
        return b.putMessage(message('other', 'd:carol', 5_000));
      });
      const expected = [...all].sort((a, b) => b.sentAt - a.sentAt || (a.id < b.id ? 1 : -1));
      const pages: MessageRecord[][] = [];
      let before: { sentAt: number; id: string } | undefined;
      for (;;) {
        const page = await storage.listMessages('d:bob', before ? { before } : {});
        if (page.length === 0) break;
        pages.push(page);
        const last = page[page.length - 1]!;
        before = { sentAt: last.sentAt, id: last.id };
      }
      expect(pages.map((p) => p.length)).toEqual([50, 50, 30]);
      expect(ids(pages.flat())).toEqual(ids(expected));
      expect(ids(await storage.listMessages('d:bob', { limit: 3 }))).toEqual(ids(expected.slice(0, 3)));
      expect(ids(await storage.listMessages('d:carol'))).toEqual(['other']);
      expect(await storage.listMessages('d:nobody')).toEqual([]);
    });

    it('orders conversations by last activity, filters requests, counts unread', async () => {
      await commit((b) =>
        b
          .putConversation(direct('old', { createdAt: 10 }))
          .putConversation(direct('recent', { createdAt: 10, lastMessageAt: 500 }))
          .putConversation(direct('req', { createdAt: 300, isRequest: true, requestState: 'pending' }))
          .putConversation(direct('tie-b', { createdAt: 200 }))
          .putConversation(direct('tie-a', { createdAt: 200 })),
      );
      expect(ids(await storage.listConversations())).toEqual(['d:recent', 'd:req', 'd:tie-a', 'd:tie-b', 'd:old']);
      expect(ids(await storage.listConversations({ requests: true }))).toEqual(['d:req']);
      expect(ids(await storage.listConversations({ requests: false }))).toEqual(['d:recent', 'd:tie-a', 'd:tie-b', 'd:old']);
      expect(ids(await storage.listConversations({ limit: 2, offset: 1 }))).toEqual(['d:req', 'd:tie-a']);

      await commit((b) => b.patchConversation('d:old', { lastMessageAt: 900, lastMessageId: 'x' }).incrementUnread('d:old', 3));
      await commit((b) => b.incrementUnread('d:old').patchConversation('d:req', { isRequest: false, requestState: 'accepted' }));
      const list = await storage.listConversations();
      expect(ids(list)[0]).toBe('d:old');
      expect(list[0]!.unreadCount).toBe(4);
      expect(await storage.listConversations({ requests: true })).toEqual([]);
      await commit((b) => b.incrementUnread('d:old', -10).incrementUnread('d:recent', 2));
      expect((await storage.getConversation('d:old'))?.unreadCount).toBe(0);
      await commit((b) => b.resetUnread('d:recent'));
      expect((await storage.getConversation('d:recent'))?.unreadCount).toBe(0);
    });

    it('leaves deleted chats out of the list on request, finds them by search, lists them again with a new message, and lists pinned and archived chats apart', async () => {
      await commit((b) =>
        b
          .putConversation(direct('shown', { createdAt: 10, lastMessageAt: 50, lastMessageId: 'm1' }))
          .putConversation(direct('gone', { createdAt: 20, title: 'Gone Girl', hidden: true, deletedThrough: { sentAt: 40, id: 'm0' } }))
          .putConversation(direct('gone-req', { createdAt: 30, isRequest: true, requestState: 'pending', hidden: true, deletedThrough: { sentAt: 40 } })),
      );
      expect(ids(await storage.listConversations())).toEqual(['d:shown', 'd:gone-req', 'd:gone']);
      expect(ids(await storage.listConversations({ hidden: false }))).toEqual(['d:shown']);
      expect(ids(await storage.listConversations({ hidden: true }))).toEqual(['d:gone-req', 'd:gone']);
      expect(ids(await storage.listConversations({ hidden: true, requests: false }))).toEqual(['d:gone']);
      expect(ids(await storage.listConversations({ hidden: true, limit: 1, offset: 1 }))).toEqual(['d:gone']);
      expect(ids(await storage.searchConversations('gone girl'))).toEqual(['d:gone']);
      expect((await storage.getConversation('d:gone'))?.deletedThrough).toEqual({ sentAt: 40, id: 'm0' });

      // a patch that is not a new message leaves it out; one naming a last message brings it back
      await commit((b) => b.patchConversation('d:gone', { muted: true, unreadCount: 0 }));
      expect(ids(await storage.listConversations({ hidden: false }))).toEqual(['d:shown']);
      await commit((b) => b.patchConversation('d:gone', { lastMessageAt: 60, lastMessageId: 'm2' }));
      expect(ids(await storage.listConversations({ hidden: false }))).toEqual(['d:gone', 'd:shown']);
      const back = await storage.getConversation('d:gone');
      expect(back?.hidden).toBeUndefined();
      expect(back?.deletedThrough).toEqual({ sentAt: 40, id: 'm0' });
      // a bad cut point is refused, and nothing changes
      await expect(commit((b) => b.patchConversation('d:shown', { deletedThrough: { sentAt: -1 } }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(commit((b) => b.patchConversation('d:shown', { hidden: 'yes' as unknown as boolean }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(ids(await storage.listConversations({ hidden: false }))).toEqual(['d:gone', 'd:shown']);

      // pinned chats can be listed apart, with the other filters
      await commit((b) => b.patchConversation('d:shown', { pinned: true, pinAt: 70 }).patchConversation('d:gone-req', { pinned: true, pinAt: 71 }));
      expect(ids(await storage.listConversations({ pinned: true }))).toEqual(['d:shown', 'd:gone-req']);
      expect(ids(await storage.listConversations({ pinned: true, hidden: false }))).toEqual(['d:shown']);
      expect(ids(await storage.listConversations({ pinned: false, hidden: false }))).toEqual(['d:gone']);
      await commit((b) => b.patchConversation('d:shown', { pinned: null }));
      expect(ids(await storage.listConversations({ pinned: true }))).toEqual(['d:gone-req']);
      expect((await storage.getConversation('d:shown'))?.pinAt).toBe(70);

      // and archived ones
      await commit((b) => b.patchConversation('d:gone', { archived: true, archiveAt: 80 }));
      expect(ids(await storage.listConversations({ archived: true }))).toEqual(['d:gone']);
      expect(ids(await storage.listConversations({ archived: false, hidden: false }))).toEqual(['d:shown']);
      expect(ids(await storage.listConversations({ archived: true, pinned: true }))).toEqual([]);
    });

    it('searches conversations by title, username and peer, case-insensitively', async () => {
      await commit((b) =>
        b
          .putConversation(direct('acc1', { title: 'Zoë Martin', lastMessageAt: 5 }))
          .putConversation(direct('acc2', { peerUsername: 'martina_k', lastMessageAt: 9 }))
          .putConversation(group('cd', { title: 'Climbing crew' })),
      );
      expect(ids(await storage.searchConversations('MARTIN'))).toEqual(['d:acc2', 'd:acc1']);
      expect(ids(await storage.searchConversations('crew'))).toEqual(['g:cd']);
      expect(ids(await storage.searchConversations('acc1'))).toEqual(['d:acc1']);
      expect(await storage.searchConversations('  ')).toEqual([]);
      expect(await storage.searchConversations('nobody')).toEqual([]);
    });

    it('searches message text by word prefix, case and diacritics insensitive, without tombstones', async () => {
      await commit((b) =>
        b
          .putConversation(direct('bob'))
          .putConversation(direct('carol'))
          .putMessage(message('m1', 'd:bob', 10, { text: 'Dinner at the Café tonight?' }))
          .putMessage(message('m2', 'd:bob', 20, { text: 'dinnertime! 🍝 see you' }))
          .putMessage(message('m3', 'd:carol', 30, { text: 'no DINNER for me' }))
          .putMessage(message('m4', 'd:carol', 40, { text: 'the cafe was closed' }))
          .putMessage(message('m5', 'd:carol', 50, { text: undefined, type: 'media' })),
      );
      expect(ids(await storage.searchMessages('dinner'))).toEqual(['m3', 'm2', 'm1']);
      expect(ids(await storage.searchMessages('DIN'))).toEqual(['m3', 'm2', 'm1']);
      expect(ids(await storage.searchMessages('cafe'))).toEqual(['m4', 'm1']);
      expect(ids(await storage.searchMessages('café'))).toEqual(['m4', 'm1']);
      expect(ids(await storage.searchMessages('dinner tonight'))).toEqual(['m1']);
      expect(ids(await storage.searchMessages('inner'))).toEqual([]);
      expect(ids(await storage.searchMessages('dinner', { conversationId: 'd:bob' }))).toEqual(['m2', 'm1']);
      expect(ids(await storage.searchMessages('dinner', { limit: 1 }))).toEqual(['m3']);
      expect(await storage.searchMessages('"; DROP TABLE messages; --')).toEqual([]);
      expect(await storage.searchMessages('🍝')).toEqual([]);

      await commit((b) => b.patchMessage('m3', { deletedAt: 60 }).patchMessage('m1', { text: 'lunch instead', editedAt: 61 }));
      expect(ids(await storage.searchMessages('dinner'))).toEqual(['m2']);
      expect(ids(await storage.searchMessages('lunch'))).toEqual(['m1']);
      // Re-indexing on edit keeps words shared by the old and new text.
      await commit((b) => b.patchMessage('m1', { text: 'lunch later' }).patchMessage('m1', { text: 'early lunch' }));
      expect(ids(await storage.searchMessages('lunch'))).toEqual(['m1']);
      expect(ids(await storage.searchMessages('early'))).toEqual(['m1']);
      expect(await storage.searchMessages('later')).toEqual([]);
      await commit((b) => b.deleteMessage('m2'));
      expect(await storage.searchMessages('dinner')).toEqual([]);
    });

    it('merges reactions (one per person, change, remove) and delivery status without regressions (and removes a recipient)', async () => {
      await commit((b) =>
        b.putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 10, { outgoing: true, senderAccountId: 'me', status: { bob: { state: 'pending', at: 10 } } })),
      );
      await commit((b) => b.patchMessage('m1', { reactions: { bob: { emoji: '👍', at: 11 }, carol: { emoji: '😂', at: 12 } } }));
      await commit((b) => b.patchMessage('m1', { reactions: { bob: { emoji: '❤️', at: 13 } } }));
      expect((await storage.getMessage('m1'))?.reactions).toEqual({ bob: { emoji: '❤️', at: 13 }, carol: { emoji: '😂', at: 12 } });
      await commit((b) => b.patchMessage('m1', { reactions: { carol: null } }));
      expect((await storage.getMessage('m1'))?.reactions).toEqual({ bob: { emoji: '❤️', at: 13 } });

      await commit((b) => b.patchMessage('m1', { status: { bob: { state: 'sent', at: 14 }, carol: { state: 'sent', at: 14 } } }));
      await commit((b) => b.patchMessage('m1', { status: { bob: { state: 'read', at: 16 } } }));
      await commit((b) => b.patchMessage('m1', { status: { bob: { state: 'delivered', at: 15 }, carol: { state: 'failed', at: 17 } } }));
      expect((await storage.getMessage('m1'))?.status).toEqual({ bob: { state: 'read', at: 16 }, carol: { state: 'failed', at: 17 } });
      // null removes a recipient (a group member the send left out)
      await commit((b) => b.patchMessage('m1', { status: { carol: null, dave: null } }));
      expect((await storage.getMessage('m1'))?.status).toEqual({ bob: { state: 'read', at: 16 } });
      await commit((b) => b.patchMessage('m1', { seenAt: 20, expiresAt: 99 }));
      await commit((b) => b.patchMessage('m1', { expiresAt: null }));
      const m = await storage.getMessage('m1');
      expect(m?.seenAt).toBe(20);
      expect(m && 'expiresAt' in m).toBe(false);
    });

    it('edits, tombstones (unsend) and deletes messages', async () => {
      await commit((b) => b.putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 10, { reactions: { bob: { emoji: '👍', at: 1 } } })));
      await commit((b) => b.patchMessage('m1', { body: new Uint8Array([7]), text: 'edited', editedAt: 12 }));
      expect(await storage.getMessage('m1')).toMatchObject({ body: new Uint8Array([7]), text: 'edited', editedAt: 12 });

      await commit((b) => b.patchMessage('m1', { deletedAt: 20 }));
      const tomb = await storage.getMessage('m1');
      expect(tomb).toMatchObject({ deletedAt: 20, body: new Uint8Array(0), reactions: {} });
      expect(tomb && 'text' in tomb).toBe(false);
      // Neither a late edit nor a redelivered original brings the content back.
      await commit((b) => b.patchMessage('m1', { body: new Uint8Array([8]), text: 'again', reactions: { x: { emoji: '🔥', at: 2 } } }));
      await commit((b) => b.putMessage(message('m1', 'd:bob', 10)));
      expect(await storage.getMessage('m1')).toMatchObject({ deletedAt: 20, body: new Uint8Array(0), reactions: {} });
      expect(ids(await storage.listMessages('d:bob'))).toEqual(['m1']);

      await commit((b) => b.deleteMessage('m1').deleteMessage('never-existed'));
      expect(await storage.getMessage('m1')).toBeUndefined();
      expect(await storage.listMessages('d:bob')).toEqual([]);
    });

    it('takes an incoming message unsent or deleted before it was seen off the unread count, and no other', async () => {
      await commit((b) =>
        b.putConversation(direct('bob'))
          .putMessage(message('u1', 'd:bob', 10)).putMessage(message('u2', 'd:bob', 11)).putMessage(message('u3', 'd:bob', 12))
          .putMessage(message('seen', 'd:bob', 13, { seenAt: 14 })).putMessage(message('mine', 'd:bob', 15, { outgoing: true }))
          .incrementUnread('d:bob', 3),
      );
      const unread = async () => (await storage.getConversation('d:bob'))?.unreadCount;
      // the seen one, our own, an unknown id: no change
      await commit((b) => b.deleteMessage('seen').patchMessage('mine', { deletedAt: 16 }).deleteMessage('never-existed'));
      expect(await unread()).toBe(3);
      await commit((b) => b.patchMessage('u1', { deletedAt: 17 }));
      expect(await unread()).toBe(2);
      // a tombstone deleted later counts once; an unseen one deleted counts
      await commit((b) => b.deleteMessage('u1').deleteMessage('u2'));
      expect(await unread()).toBe(1);
      // never below zero
      await commit((b) => b.resetUnread('d:bob').deleteMessage('u3'));
      expect(await unread()).toBe(0);
    });

    it('keeps a durable outbox ordered by due time', async () => {
      await commit((b) =>
        b
          .putOutbox(outbox('late', 300, { createdAt: 1 }))
          .putOutbox(outbox('b', 100, { createdAt: 5 }))
          .putOutbox(outbox('a', 100, { createdAt: 5, messageId: 'm1', lastError: 'NETWORK' }))
          .putOutbox(outbox('first', 50, { createdAt: 9 })),
      );
      expect(ids(await storage.dueOutbox(200))).toEqual(['first', 'a', 'b']);
      expect(ids(await storage.dueOutbox(200, 2))).toEqual(['first', 'a']);
      expect(ids(await storage.dueOutbox(10))).toEqual([]);
      expect(ids(await storage.listOutbox())).toEqual(['late', 'a', 'b', 'first']);
      expect((await storage.listOutbox())[1]).toEqual(outbox('a', 100, { createdAt: 5, messageId: 'm1', lastError: 'NETWORK' }));
      await commit((b) => b.putOutbox(outbox('first', 400, { createdAt: 9, attempts: 1 })).deleteOutbox('a'));
      expect(ids(await storage.dueOutbox(1_000))).toEqual(['b', 'late', 'first']);
      expect((await storage.dueOutbox(1_000))[2]?.attempts).toBe(1);
    });

    it('stores settings of every value shape', async () => {
      const value = { list: [1, 'two', true], bytes: new Uint8Array([1, 2]), nested: { a: 'b' } };
      await commit((b) => b.setSetting('obj', value).setSetting('flag', false).setSetting('name', 'x'));
      expect(await storage.getSetting('obj')).toEqual(value);
      expect(await storage.getSetting('flag')).toBe(false);
      await commit((b) => b.setSetting('name', null));
      expect(await storage.getSetting('name')).toBeUndefined();
      expect(await storage.getSetting('missing')).toBeUndefined();
    });

    it('keeps call logs, newest first, per conversation', async () => {
      await commit((b) =>
        b
          .putCallLog(callLog('c1', 100))
          .putCallLog(callLog('c2', 300, { conversationId: 'g:ab', type: 'voice', status: 'missed', endedAt: undefined, durationSec: undefined }))
          .putCallLog(callLog('c3', 200, { status: 'ringing' })),
      );
      expect((await storage.listCallLogs()).map((c) => c.callId)).toEqual(['c2', 'c3', 'c1']);
      expect((await storage.listCallLogs({ conversationId: 'd:bob' })).map((c) => c.callId)).toEqual(['c3', 'c1']);
      expect((await storage.listCallLogs({ limit: 1 })).map((c) => c.callId)).toEqual(['c2']);
      await commit((b) => b.putCallLog(callLog('c3', 200, { status: 'ended' })));
      expect((await storage.listCallLogs({ conversationId: 'd:bob' }))[0]).toEqual(callLog('c3', 200, { status: 'ended' }));
    });

    it('stores protocol records and serves them to engines through staged stores', async () => {
      await commit((b) => b.protocolRecord('preKey', '2', new Uint8Array([2])).protocolRecord('preKey', '1', new Uint8Array([1])));
      expect(await storage.listProtocolKeys('preKey')).toEqual(['1', '2']);
      await commit((b) => b.protocolRecord('preKey', '1', null));
      expect(await storage.getProtocolRecord('preKey', '1')).toBeUndefined();
      expect(await storage.getProtocolRecord('preKey', '2')).toEqual(new Uint8Array([2]));

      const identity = { identityKeyPair: new Uint8Array([5, 6, 7]), registrationId: 42 };
      await commit((b) => b.protocolChanges([localIdentityChange(identity)]));
      const stores = readProtocolStores(storage);
      expect(await stores.identity.getLocalIdentity()).toEqual(identity);
      const bob = { accountId: 'bob', deviceId: 1 };
      await expectCode(stores.session.saveSession(bob, new Uint8Array([1])), 'UNSUPPORTED');

      const staged = stageStores(stores);
      await staged.stores.session.saveSession(bob, new Uint8Array([1, 1]));
      await staged.stores.identity.saveRemoteIdentity(bob, new Uint8Array(33).fill(5));
      await staged.stores.kyberPreKey.saveKyberPreKey(7, new Uint8Array([7]), true);
      await staged.stores.senderKey.saveSenderKey(bob, 'dist-1', new Uint8Array([3]));
      await staged.stores.preKey.removePreKey(2);
      expect(await stores.session.getSession(bob)).toBeNull();
      await commit((b) => b.storeChanges(staged.changes()));
      expect(await stores.session.getSession(bob)).toEqual(new Uint8Array([1, 1]));
      expect(await stores.identity.getRemoteIdentity(bob)).toEqual(new Uint8Array(33).fill(5));
      expect(await stores.kyberPreKey.getKyberPreKey(7)).toEqual({ record: new Uint8Array([7]), lastResort: true });
      expect(await stores.senderKey.getSenderKey(bob, 'dist-1')).toEqual(new Uint8Array([3]));
      expect(await stores.preKey.getPreKey(2)).toBeNull();
    });

    it('fails every call with CLOSED after close', async () => {
      await storage.close();
      await storage.close();
      await expectCode(storage.getConversation('d:bob'), 'CLOSED');
      await expectCode(storage.listMessages('d:bob'), 'CLOSED');
      await expectCode(commit((b) => b.setSetting('a', 1)), 'CLOSED');
    });

    it('keeps everything across close and reopen', async ({ skip }) => {
      if (!opened.reopen) return skip('backend cannot reopen');
      const m1 = message('m1', 'd:bob', 10, { text: 'persisted words', status: { bob: { state: 'read', at: 3 } }, reactions: { bob: { emoji: '👍', at: 4 } } });
      await commit((b) =>
        b
          .putConversation(direct('bob', { unreadCount: 2, isRequest: true, avatar: new Uint8Array([4]) }))
          .putMessage(m1)
          .putMessage(message('m2', 'd:bob', 11, { deletedAt: 12 }))
          .putOutbox(outbox('o1', 5))
          .markProcessed('g1', 5)
          .setSetting('theme', 'dark')
          .putCallLog(callLog('c1', 7))
          .protocolRecord('session', 'bob.1', new Uint8Array([9])),
      );
      await storage.close();
      storage = await opened.reopen();
      expect(await storage.getConversation('d:bob')).toEqual(direct('bob', { unreadCount: 2, isRequest: true, avatar: new Uint8Array([4]) }));
      expect(await storage.getMessage('m1')).toEqual(m1);
      expect(ids(await storage.listMessages('d:bob'))).toEqual(['m2', 'm1']);
      expect(ids(await storage.searchMessages('persist'))).toEqual(['m1']);
      expect(ids(await storage.listConversations({ requests: true }))).toEqual(['d:bob']);
      expect(ids(await storage.dueOutbox(10))).toEqual(['o1']);
      expect(await storage.isProcessed('g1')).toBe(true);
      expect(await storage.getSetting('theme')).toBe('dark');
      expect((await storage.listCallLogs())[0]).toEqual(callLog('c1', 7));
      expect(await storage.getProtocolRecord('session', 'bob.1')).toEqual(new Uint8Array([9]));
      await commit((b) => b.patchMessage('m1', { deletedAt: 20 }));
      expect(await storage.searchMessages('persist')).toEqual([]);
    });

    it('applies relaxed commits like strict ones: atomic, visible at once, kept across close and reopen', async ({ skip }) => {
      await storage.commit(new StorageBatch().putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 10, { text: 'relaxed words' })), { durability: 'relaxed' });
      expect(ids(await storage.searchMessages('relaxed'))).toEqual(['m1']);
      const failing = new StorageBatch().putMessage(message('m2', 'd:bob', 11)).patchMessage('missing', { seenAt: 1 });
      await expectCode(storage.commit(failing, { durability: 'relaxed' }), 'NOT_FOUND');
      expect(await storage.getMessage('m2')).toBeUndefined();
      await storage.commit(new StorageBatch().putMessage(message('m3', 'd:bob', 12)), { durability: 'strict' });
      await storage.commit(new StorageBatch().patchMessage('m1', { seenAt: 13 }), { durability: 'relaxed' });
      if (!opened.reopen) return skip('backend cannot reopen');
      await storage.close();
      storage = await opened.reopen();
      expect(ids(await storage.listMessages('d:bob'))).toEqual(['m3', 'm1']);
      expect((await storage.getMessage('m1'))?.seenAt).toBe(13);
    });

    it('forgets protocol records of one kind below a key, and nothing else', async () => {
      const v = (n: number) => new Uint8Array([n]);
      await commit((b) =>
        b
          .protocolRecord('t', '0001:a', v(1))
          .protocolRecord('t', '0002:b', v(2))
          .protocolRecord('t', '0003:c', v(3))
          .protocolRecord('other', '0001:a', v(4)),
      );
      expect(await storage.getProtocolRecord('t', '0001:a')).toEqual(v(1)); // read once (a backend may cache it)
      await commit((b) => b.forgetProtocolBelow('t', '0003:'));
      expect(await storage.listProtocolKeys('t')).toEqual(['0003:c']);
      expect(await storage.getProtocolRecord('t', '0001:a')).toBeUndefined();
      expect(await storage.getProtocolRecord('other', '0001:a')).toEqual(v(4));
      await expectCode(commit((b) => b.forgetProtocolBelow('', 'x')), 'INVALID_ARGUMENT');
    });
  });
}
