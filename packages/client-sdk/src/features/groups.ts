import { encodeContent, MAX_MEMBERS_PER_ACTION, sameBytes, type Content, type GroupAction, type GroupMemberEntry, type GroupMessagePermissions } from '@sotto/protocol';
import type { ClientContext } from '../context.js';
import { SottoError } from '../errors.js';
import { sendGroupPayload } from '../groups/group-messenger.js';
import { mayPostInGroup } from '../groups/group-receive.js';
import { rememberSigned, groupIdOf, groupVerifier, loadGroupLog, saveGroupLog, saveSenderKeyState } from '../groups/group-store.js';
import { genesisGroupChange, newGroupId, nextGroupChange, signGroupChange, type GroupAuthor } from '../groups/author.js';
import { GroupLog } from '../groups/log.js';
import { GroupChangeRejectedError } from '../groups/rejection.js';
import { enqueueGroupUpdates } from '../groups/updates.js';
import { queueKeyOffer } from '../groups/key-offers.js';
import { newMessageId } from '../ids.js';
import { enqueueContent } from '../messaging/compose.js';
import { StorageBatch } from '../storage/batch.js';
import { readProtocolStores } from '../storage/protocol-stores.js';
import type { ConversationRecord } from '../storage/types.js';

/** Options of {@link createGroup}. */
export interface CreateGroupOptions {
  /** Group name, 1..128 characters. */
  name: string;
  /** Usernames of the other members (this account is added as the first admin). */
  members: string[];
  /** Encoded AttachmentPointer of an avatar already uploaded encrypted (optional). */
  avatar?: Uint8Array;
  messagePermissions?: GroupMessagePermissions;
}

/** What {@link updateGroup} may change; absent fields stay as they are. */
export interface GroupSettingsUpdate {
  name?: string;
  /** Encoded AttachmentPointer; `null` removes the avatar. */
  avatar?: Uint8Array | null;
  messagePermissions?: GroupMessagePermissions;
}

/**
 * Creates a group: a genesis change signed with our identity key, listing each member under the
 * identity key of its device 1 (the key the group log pins for the account), stored as a group
 * conversation and sent pairwise to every member through the durable outbox. Our sender key is
 * distributed with the first group message. Resolves with the conversation id (`g:<hex>`).
 *
 * @example
 * const chat = await createGroup(ctx, { name: 'Trip', members: ['bob', 'carol'] });
 * await client.sendText(chat, 'hi all');
 */
export async function createGroup(ctx: ClientContext, options: CreateGroupOptions): Promise<string> {
  const self = ctx.account.accountId;
  const memberIds = [...new Set(options.members.map((m) => m.toLowerCase()))].filter((m) => m !== self);
  if (options.name.length === 0 || options.name.length > 128) throw new SottoError('INVALID_ARGUMENT', 'group name must be 1..128 characters', { field: 'name' });
  if (memberIds.length === 0) throw new SottoError('INVALID_ARGUMENT', 'a group needs at least one other member', { field: 'members' });
  // One change lists at most MAX_MEMBERS_PER_ACTION members (the creator included): larger
  // groups start with the first of them and add the rest in further changes.
  const rest = memberIds.splice(MAX_MEMBERS_PER_ACTION - 1);
  const members = await memberEntries(ctx, memberIds);
  const settings: GroupAction[] = [];
  if (options.avatar) settings.push({ type: 'setAvatar', avatar: options.avatar });
  if (options.messagePermissions && options.messagePermissions !== 'all') settings.push({ type: 'setPermissions', messagePermissions: options.messagePermissions });
  const genesis = genesisGroupChange({ groupId: newGroupId(), author: author(ctx), name: options.name, members, at: ctx.now(), settings });
  const bytes = await signGroupChange(genesis, await signer(ctx));
  const log = await GroupLog.create(bytes, groupVerifier(ctx.engine));
  const batch = new StorageBatch();
  const conversation = saveGroupLog(batch, log, self, undefined, ctx.now())!;
  enqueueGroupUpdates(ctx, batch, conversation, memberIds, [bytes], true);
  queueKeyOffer(ctx, batch, conversation, memberIds);
  await ctx.storage.commit(batch);
  void ctx.outbox.kick();
  ctx.events.emit('conversationUpdated', conversation);
  if (rest.length > 0) await addMembers(ctx, conversation.id, rest);
  return conversation.id;
}

/**
 * Applies group `actions` as one change signed by us (we must be allowed: admins for everything
 * but leaving), stores it, and sends it to every member of the new state, plus `alsoTo` (a
 * removed member learns of its removal). Newly added members get the whole canonical chain from
 * the genesis, so they can verify it. Throws `NOT_ALLOWED` (a {@link GroupChangeRejectedError})
 * when the log refuses the change.
 *
 * @example
 * await changeGroup(ctx, chat, [{ type: 'setName', name: 'Trip 2026' }]);
 */
export async function changeGroup(ctx: ClientContext, conversationId: string, actions: GroupAction[], options: { alsoTo?: string[] } = {}): Promise<ConversationRecord> {
  const sign = await signer(ctx);
  const self = ctx.account.accountId;
  const updated = await ctx.lock.run(async () => {
    const conversation = await requireGroup(ctx, conversationId);
    const log = await loadGroupLog(ctx.storage, ctx.engine, groupIdOf(conversationId));
    if (!log) throw new SottoError('NOT_FOUND', 'no state for this group', { field: 'conversationId' });
    const before = new Set(log.state.members.keys());
    const bytes = await signGroupChange(nextGroupChange(log.state, author(ctx), actions, ctx.now()), sign);
    const result = await log.add(bytes);
    if (result.status === 'rejected') throw new GroupChangeRejectedError(result.reason, result.message);
    const batch = new StorageBatch();
    rememberSigned(batch, log.head);
    const next = saveGroupLog(batch, log, self, conversation, ctx.now())!;
    const after = log.state.members;
    if ([...before].some((a) => !after.has(a))) saveSenderKeyState(batch, log.groupId, null); // rotate on removal
    const added = [...after.keys()].filter((a) => !before.has(a));
    const others = [...new Set([...after.keys(), ...before, ...(options.alsoTo ?? [])])].filter((a) => a !== self && !added.includes(a));
    // the added members' chain goes first: the others answer the change with their sender keys
    if (added.length > 0) enqueueGroupUpdates(ctx, batch, next, added, log.canonicalChain().map((e) => e.bytes));
    enqueueGroupUpdates(ctx, batch, next, others, [bytes], true);
    queueKeyOffer(ctx, batch, next, added);
    await ctx.storage.commit(batch);
    return next;
  });
  void ctx.outbox.kick();
  ctx.events.emit('conversationUpdated', updated);
  return updated;
}

/**
 * Adds members (as plain members). They cannot read anything sent before: they never held the
 * earlier sender keys, and history is not re-sent.
 * @example
 * await addMembers(ctx, chat, ['dave']);
 */
export async function addMembers(ctx: ClientContext, conversationId: string, usernames: string[]): Promise<ConversationRecord> {
  const ids = [...new Set(usernames.map((u) => u.toLowerCase()))];
  if (ids.length === 0) throw new SottoError('INVALID_ARGUMENT', 'no members to add', { field: 'usernames' });
  let updated: ConversationRecord | undefined;
  // one signed change per MAX_MEMBERS_PER_ACTION members (a change's size is bounded)
  for (let i = 0; i < ids.length; i += MAX_MEMBERS_PER_ACTION) {
    const chunk = ids.slice(i, i + MAX_MEMBERS_PER_ACTION);
    updated = await changeGroup(ctx, conversationId, [{ type: 'addMembers', members: await memberEntries(ctx, chunk) }]);
  }
  return updated!;
}

/**
 * Removes a member. Every remaining member's next group message uses a fresh sender key that the
 * removed member never receives.
 * @example
 * await removeMember(ctx, chat, 'carol');
 */
export function removeMember(ctx: ClientContext, conversationId: string, username: string): Promise<ConversationRecord> {
  const accountId = username.toLowerCase();
  return changeGroup(ctx, conversationId, [{ type: 'removeMember', accountId }], { alsoTo: [accountId] });
}

/**
 * Makes a member an admin (`true`) or a plain member (`false`).
 * @example
 * await setAdmin(ctx, chat, 'bob', true);
 */
export function setAdmin(ctx: ClientContext, conversationId: string, username: string, admin: boolean): Promise<ConversationRecord> {
  return changeGroup(ctx, conversationId, [{ type: 'setRole', accountId: username.toLowerCase(), role: admin ? 'admin' : 'member' }]);
}

/**
 * Changes the name, avatar or message permissions in one signed change.
 * @example
 * await updateGroup(ctx, chat, { messagePermissions: 'admins_only' });
 */
export function updateGroup(ctx: ClientContext, conversationId: string, update: GroupSettingsUpdate): Promise<ConversationRecord> {
  const actions: GroupAction[] = [];
  if (update.name !== undefined) actions.push({ type: 'setName', name: update.name });
  if (update.avatar !== undefined) actions.push(update.avatar === null ? { type: 'setAvatar' } : { type: 'setAvatar', avatar: update.avatar });
  if (update.messagePermissions !== undefined) actions.push({ type: 'setPermissions', messagePermissions: update.messagePermissions });
  if (actions.length === 0) throw new SottoError('INVALID_ARGUMENT', 'nothing to update');
  return changeGroup(ctx, conversationId, actions);
}

/**
 * Leaves the group (the conversation stays, read-only). The last admin must first make someone
 * else admin (`NOT_ALLOWED` otherwise).
 * @example
 * await leaveGroup(ctx, chat);
 */
export function leaveGroup(ctx: ClientContext, conversationId: string): Promise<ConversationRecord> {
  return changeGroup(ctx, conversationId, [{ type: 'leave' }]);
}

/**
 * Queues `content` for a conversation: pairwise per member for a direct one; for a group, ONE
 * outbox entry addressed to the group (the sender turns it into one sender-key ciphertext for
 * every member). Throws `NOT_ALLOWED` when we may not post it in the group (not a member, or
 * `admins_only` and we are not an admin).
 * @example
 * enqueueForConversation(ctx, batch, conversation, content, message.id);
 */
export function enqueueForConversation(ctx: ClientContext, batch: StorageBatch, conversation: ConversationRecord, content: Content, messageId?: string, encoded?: Uint8Array): void {
  if (conversation.kind !== 'group') return enqueueContent(ctx, batch, conversation, content, messageId, encoded);
  assertMayPost(ctx, conversation, content.type);
  const groupId = groupIdOf(conversation.id);
  // `encoded` is `content` encoded: still the payload if the content already names this group
  const named = content.conversation?.kind === 'group' && sameBytes(content.conversation.groupId, groupId);
  const groupContent = named ? content : ({ ...content, conversation: { kind: 'group', groupId } } as Content);
  enqueueContent(ctx, batch, { ...conversation, participants: [conversation.id] }, groupContent, messageId, named ? encoded : undefined);
}

/** `sendControl` for any conversation kind: commits `batch` with the queued content (relaxed, see `sendControl`), wakes the outbox. */
export async function sendControlForConversation(ctx: ClientContext, conversation: ConversationRecord, content: Content, batch = new StorageBatch()): Promise<void> {
  enqueueForConversation(ctx, batch, conversation, content);
  await ctx.storage.commit(batch, { durability: 'relaxed' });
  void ctx.outbox.kick();
}

/** The `conversation` header a content carries for this conversation. */
export function conversationContextOf(conversation: ConversationRecord): NonNullable<Content['conversation']> {
  return conversation.kind === 'group' ? { kind: 'group', groupId: groupIdOf(conversation.id) } : { kind: 'direct' };
}

/**
 * Typing in a group: one online-only sender-key message to the members (never stored).
 * @example
 * await sendGroupTyping(ctx, conversation, true);
 */
export async function sendGroupTyping(ctx: ClientContext, conversation: ConversationRecord, typing: boolean): Promise<boolean> {
  if ((await ctx.storage.getSetting('typingIndicators')) === false) return false;
  if (!mayPostInGroup({ ...conversation, participants: [...conversation.participants, ctx.account.accountId] }, ctx.account.accountId, 'typing')) return false;
  const content: Content = {
    v: 1,
    type: 'typing',
    id: newMessageId(),
    sentAt: ctx.now(),
    conversation: conversationContextOf(conversation),
    body: { action: typing ? 'started' : 'stopped' },
  };
  await sendGroupPayload(ctx, conversation.id, encodeContent(content), { ephemeral: true }).catch(() => undefined);
  return true;
}

function assertMayPost(ctx: ClientContext, conversation: ConversationRecord, type: Content['type']): void {
  const self = ctx.account.accountId;
  const member = conversation.participants.length > 0 || (conversation.admins ?? []).includes(self);
  if (!member) throw new SottoError('NOT_ALLOWED', 'you are not a member of this group');
  if (!mayPostInGroup({ ...conversation, participants: [...conversation.participants, self] }, self, type)) {
    throw new SottoError('NOT_ALLOWED', 'only admins may post in this group');
  }
}

/** Each account's identity key as the group pins it: that of its device 1 (verified device record). */
async function memberEntries(ctx: ClientContext, accountIds: string[]): Promise<GroupMemberEntry[]> {
  const stores = readProtocolStores(ctx.storage);
  const out: GroupMemberEntry[] = [];
  for (let i = 0; i < accountIds.length; i += 16) {
    const chunk = await Promise.all(accountIds.slice(i, i + 16).map(async (accountId) => {
      const devices = await ctx.directory.devices(accountId, { refresh: true });
      const first = devices.find((d) => d.deviceId === 1) ?? devices[0];
      if (!first) throw new SottoError('NOT_FOUND', `${accountId} has no devices`, { field: 'members' });
      const pinned = await stores.identity.getRemoteIdentity({ accountId, deviceId: first.deviceId });
      if (pinned && !sameBytes(pinned, first.identityKey)) {
        throw new SottoError('IDENTITY_CHANGED', `the identity key of ${accountId} changed`, { field: accountId });
      }
      return { accountId, identityKey: first.identityKey, role: 'member' as const };
    }));
    out.push(...chunk);
  }
  return out;
}

function author(ctx: ClientContext): GroupAuthor {
  return { accountId: ctx.account.accountId, identityKey: ctx.account.identityKey };
}

async function signer(ctx: ClientContext): Promise<(m: Uint8Array) => Promise<Uint8Array>> {
  const identity = await readProtocolStores(ctx.storage).identity.getLocalIdentity();
  return (m) => ctx.engine.sign(identity.identityKeyPair, m);
}

async function requireGroup(ctx: ClientContext, conversationId: string): Promise<ConversationRecord> {
  const c = await ctx.storage.getConversation(conversationId);
  if (!c || c.kind !== 'group') throw new SottoError('NOT_FOUND', 'no such group', { field: 'conversationId' });
  return c;
}
