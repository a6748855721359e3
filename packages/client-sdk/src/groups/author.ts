import {
  type GroupAction,
  type GroupChange,
  type GroupMemberEntry,
  GROUP_CHANGE_HASH_LENGTH,
  GROUP_ID_LENGTH,
  encodeGroupChange,
  encodeSignedGroupChange,
} from '@sotto/protocol';
import type { GroupState } from './state.js';

/** Signs bytes with the local identity key pair: `(m) => engine.sign(identityKeyPair, m)`. */
export type SignMessage = (message: Uint8Array) => Promise<Uint8Array>;

/** The local account as the author of a change. */
export interface GroupAuthor {
  accountId: string;
  /** The account identity key (0x05 || 32 bytes) that `sign` signs with. */
  identityKey: Uint8Array;
}

/**
 * A fresh random group id (32 bytes from WebCrypto unless `random` is injected).
 * @example
 * const groupId = newGroupId();
 */
export function newGroupId(random: (bytes: Uint8Array) => Uint8Array = (b) => globalThis.crypto.getRandomValues(b)): Uint8Array {
  return random(new Uint8Array(GROUP_ID_LENGTH));
}

/**
 * The revision-0 change creating a group. The author is listed first as an admin; `members`
 * (the others) carry the identity keys the author trusts for them (for now: each account's
 * identity key, that of its device 1).
 * @example
 * const genesis = genesisGroupChange({ groupId: newGroupId(), author, name: 'Trip', members: [bob], at: Date.now() });
 * const bytes = await signGroupChange(genesis, (m) => engine.sign(identityKeyPair, m));
 */
export function genesisGroupChange(options: {
  groupId: Uint8Array;
  author: GroupAuthor;
  name: string;
  members: GroupMemberEntry[];
  at: number;
  /** Further settings applied in the same change (setAvatar, setPermissions, setExpireTimer). */
  settings?: GroupAction[];
}): GroupChange {
  const { author } = options;
  return {
    v: 1,
    groupId: options.groupId,
    revision: 0,
    parent: new Uint8Array(GROUP_CHANGE_HASH_LENGTH),
    author: author.accountId,
    authorIdentityKey: author.identityKey,
    at: options.at,
    actions: [
      {
        type: 'create',
        name: options.name,
        members: [{ accountId: author.accountId, identityKey: author.identityKey, role: 'admin' }, ...options.members],
      },
      ...(options.settings ?? []),
    ],
  };
}

/**
 * The next change on top of `state` (revision + 1, parent = head).
 * @example
 * const change = nextGroupChange(log.state, author, [{ type: 'removeMember', accountId: 'carol' }], Date.now());
 * await log.add(await signGroupChange(change, sign));
 */
export function nextGroupChange(state: GroupState, author: GroupAuthor, actions: GroupAction[], at: number): GroupChange {
  return {
    v: 1,
    groupId: state.groupId,
    revision: state.revision + 1,
    parent: state.head,
    author: author.accountId,
    authorIdentityKey: author.identityKey,
    at,
    actions,
  };
}

/**
 * Encodes `change`, signs the exact bytes, returns the encoded SignedGroupChange (what travels as
 * `groupUpdate.change`). Throws the encoder's ProtocolError for an invalid change.
 * @example
 * const bytes = await signGroupChange(change, (m) => engine.sign(identityKeyPair, m));
 */
export async function signGroupChange(change: GroupChange, sign: SignMessage): Promise<Uint8Array> {
  const bytes = encodeGroupChange(change);
  return encodeSignedGroupChange({ v: 1, change: bytes, signature: await sign(bytes) });
}
