import type { CallLogRecord, ConversationRecord, MessageRecord, OutboxEntry } from '../../src/storage/index.js';

/** Small record factories for the storage tests. */
export function direct(peer: string, over: Partial<ConversationRecord> = {}): ConversationRecord {
  return {
    id: `d:${peer}`,
    kind: 'direct',
    peerAccountId: peer,
    participants: ['me', peer],
    createdAt: 1_000,
    updatedAt: 1_000,
    unreadCount: 0,
    isRequest: false,
    muted: false,
    notifications: { messages: true, reactions: true, calls: true },
    vanishMode: false,
    blocked: false,
    restricted: false,
    ...over,
  };
}

export function group(hex: string, over: Partial<ConversationRecord> = {}): ConversationRecord {
  return {
    ...direct('x'),
    id: `g:${hex}`,
    kind: 'group',
    peerAccountId: undefined,
    participants: ['me', 'a', 'b'],
    admins: ['me'],
    title: 'Group',
    messagePermissions: 'all',
    groupState: new Uint8Array([1, 2, 3]),
    ...over,
  };
}

export function message(id: string, conversationId: string, sentAt: number, over: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id,
    conversationId,
    senderAccountId: 'bob',
    senderDeviceId: 1,
    outgoing: false,
    type: 'text',
    body: new Uint8Array([0xa1, 0x61, 0x74, 0x60]),
    text: `message ${id}`,
    sentAt,
    receivedAt: sentAt + 1,
    reactions: {},
    ...over,
  };
}

export function outbox(id: string, nextAttemptAt: number, over: Partial<OutboxEntry> = {}): OutboxEntry {
  return {
    id,
    conversationId: 'd:bob',
    recipients: ['bob'],
    payload: new Uint8Array([9, 9]),
    kind: 'message',
    attempts: 0,
    nextAttemptAt,
    createdAt: 100,
    ...over,
  };
}

export function callLog(callId: string, startedAt: number, over: Partial<CallLogRecord> = {}): CallLogRecord {
  return {
    callId,
    conversationId: 'd:bob',
    type: 'video',
    initiator: 'me',
    participants: [{ accountId: 'me', joinedAt: startedAt }, { accountId: 'bob' }],
    status: 'ended',
    startedAt,
    endedAt: startedAt + 60_000,
    durationSec: 60,
    ...over,
  };
}
