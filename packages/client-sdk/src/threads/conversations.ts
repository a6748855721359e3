import { directConversationId, type ConversationRecord } from '../storage/types.js';

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
