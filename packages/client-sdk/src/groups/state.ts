import {
  type GroupAction,
  type GroupChange,
  type GroupMessagePermissions,
  type GroupRole,
  MAX_GROUP_MEMBERS,
  ProtocolError,
  type SignedGroupChange,
  decodeGroupChange,
  decodeSignedGroupChange,
  hashGroupChange,
} from '@sotto/protocol';
import type { GroupRejectionReason } from './rejection.js';

/**
 * Checks an XEdDSA signature: the engine's `verify(identityKey, message, signature)`.
 * It may throw for a malformed key; that counts as a bad signature.
 */
export type VerifySignature = (identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>;

/** A current member: the account, the identity key the group knows for it, its role. */
export interface GroupMember {
  readonly accountId: string;
  readonly identityKey: Uint8Array;
  readonly role: GroupRole;
}

/** Group settings carried end to end (the relay never sees them). */
export interface GroupSettings {
  readonly name: string;
  /** Encoded AttachmentPointer of the (encrypted) avatar; absent = none. */
  readonly avatar?: Uint8Array;
  readonly messagePermissions: GroupMessagePermissions;
  /** Disappearing-message timer; 0 = off. */
  readonly expireTimerMs: number;
}

/**
 * The state a verified chain of changes produces. Immutable: applying a change returns a new one.
 * `head` is the hash of the last applied change (the next change's `parent`).
 */
export interface GroupState {
  readonly groupId: Uint8Array;
  readonly revision: number;
  readonly head: Uint8Array;
  /** Current members by account id, in the order they joined. */
  readonly members: ReadonlyMap<string, GroupMember>;
  /** Accounts that were members and were removed or left (and were not added back). */
  readonly formerMembers: ReadonlySet<string>;
  readonly settings: GroupSettings;
}

/** A decoded, hashed change, as the log keeps it. */
export interface DecodedGroupChange {
  readonly signed: SignedGroupChange;
  /** The encoded SignedGroupChange exactly as received. */
  readonly bytes: Uint8Array;
  readonly change: GroupChange;
  /** {@link hashGroupChange} of `signed.change`. */
  readonly hash: Uint8Array;
}

/** The outcome of {@link applyGroupChange}: the new state, or why the change was refused. */
export type GroupChangeResult =
  | { ok: true; state: GroupState; change: DecodedGroupChange }
  | { ok: false; reason: GroupRejectionReason; message: string; cause?: unknown };

const reject = (reason: GroupRejectionReason, message: string, cause?: unknown): GroupChangeResult =>
  cause === undefined ? { ok: false, reason, message } : { ok: false, reason, message, cause };

export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Decodes and hashes an encoded SignedGroupChange; `MALFORMED` rejection on bad bytes.
 * @example
 * const decoded = await decodeGroupChangeBytes(groupUpdate.change);
 * if (decoded.ok) console.log(decoded.change.change.revision);
 */
export async function decodeGroupChangeBytes(
  bytes: Uint8Array,
): Promise<{ ok: true; change: DecodedGroupChange } | { ok: false; reason: 'MALFORMED'; message: string; cause: unknown }> {
  try {
    const signed = decodeSignedGroupChange(bytes);
    const change = decodeGroupChange(signed.change);
    return { ok: true, change: { signed, bytes: new Uint8Array(bytes), change, hash: await hashGroupChange(signed.change) } };
  } catch (cause) {
    if (!(cause instanceof ProtocolError)) throw cause;
    return { ok: false, reason: 'MALFORMED', message: `undecodable group change (${cause.code})`, cause };
  }
}

/**
 * Applies one signed change to `state` (or, with `state` null, starts a group from a genesis
 * change) after checking, in order: group id, revision and parent, that the author is a current
 * member known under the signing key, the signature, and that every action is allowed to the
 * author at that point. All actions apply or none. Pure apart from the injected `verify`.
 *
 * A genesis is self-asserted: its author's key is the one in the change. The caller must check it
 * against its identity store for `change.author` before trusting the group.
 *
 * @example
 * const result = await applyGroupChange(state, bytes, (k, m, s) => engine.verify(k, m, s));
 * if (result.ok) state = result.state; else console.warn('group change rejected', result.reason);
 */
export async function applyGroupChange(state: GroupState | null, bytes: Uint8Array, verify: VerifySignature): Promise<GroupChangeResult> {
  const decoded = await decodeGroupChangeBytes(bytes);
  return decoded.ok ? applyDecodedGroupChange(state, decoded.change, verify) : decoded;
}

/** {@link applyGroupChange} for a change already decoded and hashed (the log decodes once). */
export async function applyDecodedGroupChange(
  state: GroupState | null,
  decoded: DecodedGroupChange,
  verify: VerifySignature,
): Promise<GroupChangeResult> {
  const { change } = decoded;
  if (state === null) {
    if (change.revision !== 0) return reject('WRONG_REVISION', `a group starts at revision 0, got ${change.revision}`);
    const create = change.actions[0];
    const self = create?.type === 'create' ? create.members.find((m) => m.accountId === change.author) : undefined;
    if (!self || self.role !== 'admin' || !bytesEqual(self.identityKey, change.authorIdentityKey)) {
      return reject('INVALID_GENESIS', 'the creator must be listed as an admin with the signing key');
    }
  } else {
    if (!bytesEqual(change.groupId, state.groupId)) return reject('WRONG_GROUP', 'change is for another group');
    if (change.revision !== state.revision + 1) {
      return reject('WRONG_REVISION', `expected revision ${state.revision + 1}, got ${change.revision}`);
    }
    if (!bytesEqual(change.parent, state.head)) return reject('WRONG_PARENT', 'parent is not the current head');
    const author = state.members.get(change.author);
    if (!author) {
      return state.formerMembers.has(change.author)
        ? reject('AUTHOR_REMOVED', 'the author is no longer a member')
        : reject('AUTHOR_NOT_MEMBER', 'the author is not a member');
    }
    if (!bytesEqual(author.identityKey, change.authorIdentityKey)) {
      return reject('AUTHOR_KEY_MISMATCH', 'the signing key is not the key the group knows for the author');
    }
  }

  let valid = false;
  try {
    valid = await verify(change.authorIdentityKey, decoded.signed.change, decoded.signed.signature);
  } catch (cause) {
    return reject('BAD_SIGNATURE', 'signature could not be checked', cause);
  }
  if (!valid) return reject('BAD_SIGNATURE', 'signature does not verify');

  const draft: Draft = {
    members: new Map(state?.members ?? []),
    former: new Set(state?.formerMembers ?? []),
    settings: { ...(state?.settings ?? { name: '', messagePermissions: 'all', expireTimerMs: 0 }) },
  };
  for (const [i, action] of change.actions.entries()) {
    const failure = applyAction(draft, change.author, action, i);
    if (failure) return failure;
  }
  if (draft.members.size > MAX_GROUP_MEMBERS) return reject('TOO_MANY_MEMBERS', `more than ${MAX_GROUP_MEMBERS} members`);
  if (draft.members.size > 0 && ![...draft.members.values()].some((m) => m.role === 'admin')) {
    return reject('LAST_ADMIN', 'the group would have no admin');
  }
  return {
    ok: true,
    change: decoded,
    state: {
      groupId: change.groupId,
      revision: change.revision,
      head: decoded.hash,
      members: draft.members,
      formerMembers: draft.former,
      settings: draft.settings,
    },
  };
}

interface Draft {
  members: Map<string, GroupMember>;
  former: Set<string>;
  settings: { name: string; avatar?: Uint8Array; messagePermissions: GroupMessagePermissions; expireTimerMs: number };
}

/** Applies one action to the draft; returns a rejection, or undefined when allowed. */
function applyAction(draft: Draft, author: string, action: GroupAction, index: number): GroupChangeResult | undefined {
  const where = `action ${index} (${action.type})`;
  const me = draft.members.get(author);
  if (action.type !== 'create') {
    if (!me) return reject('AUTHOR_REMOVED', `${where}: the author is no longer a member`);
    if (action.type !== 'leave' && me.role !== 'admin') return reject('NOT_ADMIN', `${where}: only admins may do this`);
  }
  switch (action.type) {
    case 'create':
      draft.settings.name = action.name;
      for (const m of action.members) draft.members.set(m.accountId, { accountId: m.accountId, identityKey: m.identityKey, role: m.role });
      return undefined;
    case 'addMembers':
      for (const m of action.members) {
        if (draft.members.has(m.accountId)) return reject('ALREADY_MEMBER', `${where}: an account is already a member`);
        draft.members.set(m.accountId, { accountId: m.accountId, identityKey: m.identityKey, role: m.role });
        draft.former.delete(m.accountId);
      }
      return undefined;
    case 'removeMember':
      if (!draft.members.delete(action.accountId)) return reject('UNKNOWN_MEMBER', `${where}: not a member`);
      draft.former.add(action.accountId);
      return undefined;
    case 'setRole': {
      const target = draft.members.get(action.accountId);
      if (!target) return reject('UNKNOWN_MEMBER', `${where}: not a member`);
      draft.members.set(action.accountId, { ...target, role: action.role });
      return undefined;
    }
    case 'setName':
      draft.settings.name = action.name;
      return undefined;
    case 'setAvatar':
      if (action.avatar === undefined) delete draft.settings.avatar;
      else draft.settings.avatar = action.avatar;
      return undefined;
    case 'setPermissions':
      draft.settings.messagePermissions = action.messagePermissions;
      return undefined;
    case 'setExpireTimer':
      draft.settings.expireTimerMs = action.expireTimerMs;
      return undefined;
    case 'leave':
      draft.members.delete(author);
      draft.former.add(author);
      return undefined;
  }
}
