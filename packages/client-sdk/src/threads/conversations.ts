import type { Storage } from '../storage/storage.js';
import { directConversationId, type ConversationRecord, type MessageRecord } from '../storage/types.js';

/** A fresh direct conversation with `peerAccountId`, in the requests inbox when `isRequest`. */
export function newDirectConversation(peerAccountId: string, now: number, options: { isRequest: boolean }): ConversationRecord {
  return {
    id: directConversationId(peerAccountId),
    kind: 'direct',
    peerAccountId,
    peerUsername: peerAccountId,
    title: peerAccountId,
    participants: [peerAccountId],
    createdAt: now,
    updatedAt: now,
    unreadCount: 0,
    isRequest: options.isRequest,
    requestState: options.isRequest ? 'pending' : 'accepted',
    muted: false,
    notifications: { messages: true, reactions: true, calls: true },
    vanishMode: false,
    blocked: false,
    restricted: false,
  };
}

/**
 * Incoming messages of a conversation not yet seen, newest first (pages until the first seen
 * one): what `markSeen`, a read sync and a catch-up mark seen.
 */
export async function unseenIncoming(storage: Storage, conversationId: string): Promise<MessageRecord[]> {
  const unseen: MessageRecord[] = [];
  let before: { sentAt: number; id: string } | undefined;
  for (;;) {
    const page = await storage.listMessages(conversationId, { limit: 100, ...(before ? { before } : {}) });
    for (const m of page) if (!m.outgoing && m.seenAt === undefined && m.deletedAt === undefined) unseen.push(m);
    const last = page[page.length - 1];
    if (page.length < 100 || !last || page.some((m) => !m.outgoing && m.seenAt !== undefined)) break;
    before = { sentAt: last.sentAt, id: last.id };
  }
  return unseen;
}
