import { FieldReader, decodeCbor, encodeCbor, fromHex, items, toHex, type ProtocolEngine } from '@sotto/protocol';
import type { StorageBatch } from '../storage/batch.js';
import type { Storage } from '../storage/storage.js';
import { groupConversationId, type ConversationRecord } from '../storage/types.js';
import { GroupLog } from './log.js';
import type { GroupState } from './state.js';

/**
 * Where the SDK keeps group state, as protocol records (so it commits atomically with the
 * ratchet changes of the envelope that carried it):
 *
 * | kind             | key          | value                                                        |
 * |------------------|--------------|--------------------------------------------------------------|
 * | `groupLog`       | hex group id | {@link GroupLog.serialize} (also mirrored in `ConversationRecord.groupState`) |
 * | `groupSenderKey` | hex group id | CBOR `{ v: 1, distributionId, distributedTo: [accountId] }`  |
 *
 * A log is kept before we are a member (a newly added member receives the chain from the genesis
 * on); the conversation exists only while (or after) we are one.
 */
export const GROUP_KINDS = { log: 'groupLog', senderKey: 'groupSenderKey', signed: 'groupSigned' } as const;

/** Remembers that THIS device signed the change with `hash` (it re-issues it if it loses a fork). */
export function rememberSigned(batch: StorageBatch, hash: Uint8Array): void {
  batch.protocolRecord(GROUP_KINDS.signed, toHex(hash), new Uint8Array(0));
}

/** Our current sender key for one group and the accounts that already hold it. */
export interface GroupSenderKeyState {
  distributionId: string;
  distributedTo: string[];
}

/** The engine's XEdDSA check, as the group log wants it. */
export function groupVerifier(engine: ProtocolEngine) {
  return (key: Uint8Array, message: Uint8Array, signature: Uint8Array) => engine.verify(key, message, signature);
}

/** The stored log of a group, or undefined when we know nothing about it. */
export async function loadGroupLog(storage: Storage, engine: ProtocolEngine, groupId: Uint8Array): Promise<GroupLog | undefined> {
  const bytes = await storage.getProtocolRecord(GROUP_KINDS.log, toHex(groupId));
  return bytes ? GroupLog.restore(bytes, groupVerifier(engine)) : undefined;
}

/** The group id of a `g:<hex>` conversation id. */
export function groupIdOf(conversationId: string): Uint8Array {
  return fromHex(conversationId.slice(2));
}

/** Stages the log, and the conversation fields that mirror its state, into `batch`. */
export function saveGroupLog(batch: StorageBatch, log: GroupLog, self: string, conversation: ConversationRecord | undefined, now: number): ConversationRecord | undefined {
  const bytes = log.serialize();
  batch.protocolRecord(GROUP_KINDS.log, toHex(log.groupId), bytes);
  const state = log.state;
  if (!conversation && !state.members.has(self)) return undefined;
  const next: ConversationRecord = {
    ...(conversation ?? newGroupConversation(log.groupId, now)),
    ...conversationFieldsOf(state, self),
    groupState: bytes,
    updatedAt: now,
  };
  if (state.settings.avatar === undefined) delete next.avatar;
  if (state.settings.expireTimerMs === 0) delete next.expireTimerMs;
  batch.putConversation(next);
  return next;
}

/** Conversation fields derived from a group state, from `self`'s point of view. */
export function conversationFieldsOf(state: GroupState, self: string): Partial<ConversationRecord> & Pick<ConversationRecord, 'participants'> {
  const members = [...state.members.values()];
  return {
    title: state.settings.name,
    // once we are out (removed or left) we send to nobody
    participants: state.members.has(self) ? members.map((m) => m.accountId).filter((a) => a !== self) : [],
    admins: members.filter((m) => m.role === 'admin').map((m) => m.accountId),
    messagePermissions: state.settings.messagePermissions,
    ...(state.settings.avatar ? { avatar: state.settings.avatar } : {}),
    ...(state.settings.expireTimerMs > 0 ? { expireTimerMs: state.settings.expireTimerMs } : {}),
  };
}

/** A group conversation with nothing known yet but its id. */
export function newGroupConversation(groupId: Uint8Array, now: number): ConversationRecord {
  return {
    id: groupConversationId(groupId),
    kind: 'group',
    participants: [],
    createdAt: now,
    updatedAt: now,
    unreadCount: 0,
    isRequest: false,
    muted: false,
    notifications: { messages: true, reactions: true, calls: true },
    vanishMode: false,
    blocked: false,
    restricted: false,
  };
}

export async function loadSenderKeyState(storage: Storage, groupId: Uint8Array): Promise<GroupSenderKeyState | undefined> {
  const bytes = await readSenderKeyRecord(storage, groupId);
  return bytes === undefined ? undefined : decodeSenderKeyState(bytes);
}

/** Our sender-key state for a group as stored (see {@link decodeSenderKeyState}). */
export async function readSenderKeyRecord(storage: Storage, groupId: Uint8Array): Promise<Uint8Array | undefined> {
  return (await storage.getProtocolRecord(GROUP_KINDS.senderKey, toHex(groupId))) ?? undefined;
}

export function decodeSenderKeyState(bytes: Uint8Array): GroupSenderKeyState {
  const r = FieldReader.from(decodeCbor(bytes), 'GroupSenderKeyState');
  r.version([1]);
  return {
    distributionId: r.string('distributionId', { minLength: 36, maxLength: 36 }),
    distributedTo: r.array('distributedTo', 4096, items.string(256)),
  };
}

/** Stages our sender-key state for a group; `null` drops it (the next send starts a fresh key). */
export function saveSenderKeyState(batch: StorageBatch, groupId: Uint8Array, state: GroupSenderKeyState | null): void {
  batch.protocolRecord(GROUP_KINDS.senderKey, toHex(groupId), state === null ? null : encodeCbor({ v: 1, ...state }));
}
