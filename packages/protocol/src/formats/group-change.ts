import { encodeCbor } from '../codec/cbor.js';
import { type FieldReader, compact, items } from '../codec/fields.js';
import { ProtocolError } from '../errors.js';
import {
  GROUP_ID_LENGTH,
  SIGNATURE_LENGTH,
  decodeVersioned,
  encodeChecked,
  readAccountId,
  readCurveKey,
  readTimestamp,
  requireMinCount,
  requireUnique,
} from './common.js';
import { MAX_ATTACHMENT_POINTER_BYTES } from './attachment-pointer.js';
import { MAX_EXPIRE_TIMER_MS } from './content/common.js';
import { GROUP_CHANGE_HASH_LENGTH, MAX_GROUP_CHANGE_BYTES } from './content/group.js';

/** Longest group name (UTF-16 code units). */
export const MAX_GROUP_NAME_LENGTH = 128;
/** Most members one `create` or `addMembers` action lists. */
export const MAX_MEMBERS_PER_ACTION = 256;
/** Most members a group may have (enforced when a change is applied to a state). */
export const MAX_GROUP_MEMBERS = 1024;
/** Most actions in one change. */
export const MAX_GROUP_ACTIONS = 16;
/** Highest revision number. */
export const MAX_GROUP_REVISION = 2 ** 32 - 1;
/** Largest encoded SignedGroupChange: it travels as `groupUpdate.change`, so the same cap. */
export const MAX_SIGNED_GROUP_CHANGE_BYTES = MAX_GROUP_CHANGE_BYTES;
/** Largest encoded GroupChange (room left for the signature and framing). */
export const MAX_GROUP_CHANGE_RECORD_BYTES = MAX_SIGNED_GROUP_CHANGE_BYTES - 128;

export type GroupRole = 'admin' | 'member';
export const GROUP_ROLES: readonly GroupRole[] = ['admin', 'member'];
export type GroupMessagePermissions = 'all' | 'admins_only';
export const GROUP_MESSAGE_PERMISSIONS: readonly GroupMessagePermissions[] = ['all', 'admins_only'];

/** A member as named by a change: the account, its identity key as the author knows it, a role. */
export interface GroupMemberEntry {
  accountId: string;
  identityKey: Uint8Array;
  role: GroupRole;
}

/** One step of a {@link GroupChange}; applied in order, all or nothing. */
export type GroupAction =
  | { type: 'create'; name: string; members: GroupMemberEntry[] }
  | { type: 'addMembers'; members: GroupMemberEntry[] }
  | { type: 'removeMember'; accountId: string }
  | { type: 'setRole'; accountId: string; role: GroupRole }
  | { type: 'setName'; name: string }
  | { type: 'setAvatar'; avatar?: Uint8Array }
  | { type: 'setPermissions'; messagePermissions: GroupMessagePermissions }
  | { type: 'setExpireTimer'; expireTimerMs: number }
  | { type: 'leave' };

export type GroupActionType = GroupAction['type'];
export const GROUP_ACTION_TYPES: readonly GroupActionType[] = [
  'create', 'addMembers', 'removeMember', 'setRole', 'setName', 'setAvatar', 'setPermissions', 'setExpireTimer', 'leave',
];

/**
 * One revision of a group's state log. Version 1. Every encoding is canonical: the decoder
 * re-encodes what it read and rejects (`MALFORMED`) any other byte layout, so one change has
 * exactly one encoding and one hash.
 *
 * ```text
 * GroupChange = {                      CBOR map, keys in this order
 *   v:                 1               uint, first
 *   groupId:           bytes(32)       random group id
 *   revision:          uint            0 (genesis) .. 2^32-1
 *   parent:            bytes(32)       hashGroupChange of the parent; 32 zero bytes at revision 0
 *   author:            text            account id of the signer
 *   authorIdentityKey: bytes(33)       0x05 || Curve25519 key that signed
 *   at:                uint            ms since the Unix epoch (informational, never used to order)
 *   actions:           [ GroupAction ] 1..16
 * }                                    <= 61312 bytes encoded
 * GroupAction = { type: text, ... }    keys: type first, then the fields below in this order
 *   create          name: text(<=128), members: [ Member ] 1..256      only as the first action
 *                                                                      of revision 0, and there
 *                                                                      it is required
 *   addMembers      members: [ Member ] 1..256
 *   removeMember    accountId: text
 *   setRole         accountId: text, role: 'admin' | 'member'
 *   setName         name: text(<=128)
 *   setAvatar       avatar?: bytes(<=16384)   an encoded AttachmentPointer; absent = no avatar
 *   setPermissions  messagePermissions: 'all' | 'admins_only'
 *   setExpireTimer  expireTimerMs: uint (0 = off, <= 365 days)
 *   leave           (no fields)
 * Member = { accountId: text, identityKey: bytes(33), role: 'admin' | 'member' }, unique per action
 * ```
 */
export interface GroupChange {
  v: 1;
  groupId: Uint8Array;
  revision: number;
  parent: Uint8Array;
  author: string;
  authorIdentityKey: Uint8Array;
  at: number;
  actions: GroupAction[];
}

/**
 * A GroupChange with the author identity key's XEdDSA signature over the exact `change` bytes.
 * Version 1, canonical like GroupChange.
 *
 * ```text
 * SignedGroupChange = {
 *   v:         1                       uint, first
 *   change:    bytes                   an encoded GroupChange
 *   signature: bytes(64)               XEdDSA over `change` (verified by the client, not here)
 * }                                    <= 61440 bytes encoded (fits groupUpdate.change)
 * ```
 */
export interface SignedGroupChange {
  v: 1;
  change: Uint8Array;
  signature: Uint8Array;
}

const CHANGE_LIMITS = Object.freeze({ maxBytes: MAX_GROUP_CHANGE_RECORD_BYTES, maxDepth: 5, maxItems: 8192, maxStringBytes: MAX_ATTACHMENT_POINTER_BYTES });
const SIGNED_LIMITS = Object.freeze({ maxBytes: MAX_SIGNED_GROUP_CHANGE_BYTES, maxDepth: 1, maxItems: 8, maxStringBytes: MAX_GROUP_CHANGE_RECORD_BYTES });

function invalid(field: string, what: string): never {
  throw new ProtocolError('INVALID_FIELD', `${field} ${what}`, { field });
}

function readName(r: FieldReader): string {
  return r.string('name', { maxLength: MAX_GROUP_NAME_LENGTH });
}

function readMembers(r: FieldReader, path: string): GroupMemberEntry[] {
  const members = r.array('members', MAX_MEMBERS_PER_ACTION, items.map((m) => ({
    accountId: readAccountId(m, 'accountId'),
    identityKey: readCurveKey(m, 'identityKey', `${path}.members`),
    role: m.literal('role', GROUP_ROLES),
  })));
  requireMinCount(members, 1, `${path}.members`);
  requireUnique(members.map((m) => m.accountId), `${path}.members`);
  return members;
}

function readAction(r: FieldReader, path: string): GroupAction {
  const type = r.literal('type', GROUP_ACTION_TYPES);
  switch (type) {
    case 'create':
      return { type, name: readName(r), members: readMembers(r, path) };
    case 'addMembers':
      return { type, members: readMembers(r, path) };
    case 'removeMember':
      return { type, accountId: readAccountId(r, 'accountId') };
    case 'setRole':
      return { type, accountId: readAccountId(r, 'accountId'), role: r.literal('role', GROUP_ROLES) };
    case 'setName':
      return { type, name: readName(r) };
    case 'setAvatar':
      return compact({ type, avatar: r.optBytes('avatar', { minLength: 1, maxLength: MAX_ATTACHMENT_POINTER_BYTES }) });
    case 'setPermissions':
      return { type, messagePermissions: r.literal('messagePermissions', GROUP_MESSAGE_PERMISSIONS) };
    case 'setExpireTimer':
      return { type, expireTimerMs: r.uint('expireTimerMs', { max: MAX_EXPIRE_TIMER_MS }) };
    case 'leave':
      return { type };
  }
}

function readGroupChange(r: FieldReader): GroupChange {
  const change: GroupChange = {
    v: 1,
    groupId: r.bytes('groupId', { length: GROUP_ID_LENGTH }),
    revision: r.uint('revision', { max: MAX_GROUP_REVISION }),
    parent: r.bytes('parent', { length: GROUP_CHANGE_HASH_LENGTH }),
    author: readAccountId(r, 'author'),
    authorIdentityKey: readCurveKey(r, 'authorIdentityKey', 'GroupChange'),
    at: readTimestamp(r, 'at'),
    actions: r.array('actions', MAX_GROUP_ACTIONS, items.map((a) => readAction(a, 'GroupChange.actions'))),
  };
  requireMinCount(change.actions, 1, 'GroupChange.actions');
  const genesis = change.revision === 0;
  if (genesis !== isZeroHash(change.parent)) invalid('GroupChange.parent', 'must be all zero exactly at revision 0');
  change.actions.forEach((a, i) => {
    if (a.type === 'create' && !(genesis && i === 0)) invalid(`GroupChange.actions[${i}]`, 'create is only allowed first at revision 0');
  });
  if (genesis && change.actions[0]!.type !== 'create') invalid('GroupChange.actions[0]', 'revision 0 must start with create');
  return change;
}

function isZeroHash(hash: Uint8Array): boolean {
  return hash.every((b) => b === 0);
}

function memberToWire(m: GroupMemberEntry): Record<string, unknown> {
  return { accountId: m.accountId, identityKey: m.identityKey, role: m.role };
}

function actionToWire(a: GroupAction): Record<string, unknown> {
  switch (a.type) {
    case 'create':
      return { type: a.type, name: a.name, members: a.members.map(memberToWire) };
    case 'addMembers':
      return { type: a.type, members: a.members.map(memberToWire) };
    case 'removeMember':
      return { type: a.type, accountId: a.accountId };
    case 'setRole':
      return { type: a.type, accountId: a.accountId, role: a.role };
    case 'setName':
      return { type: a.type, name: a.name };
    case 'setAvatar':
      return compact({ type: a.type, avatar: a.avatar });
    case 'setPermissions':
      return { type: a.type, messagePermissions: a.messagePermissions };
    case 'setExpireTimer':
      return { type: a.type, expireTimerMs: a.expireTimerMs };
    case 'leave':
      return { type: a.type };
    default:
      return invalid('GroupAction.type', 'is unknown');
  }
}

function changeToWire(c: GroupChange): Record<string, unknown> {
  return {
    v: c.v,
    groupId: c.groupId,
    revision: c.revision,
    parent: c.parent,
    author: c.author,
    authorIdentityKey: c.authorIdentityKey,
    at: c.at,
    actions: Array.isArray(c.actions) ? c.actions.map(actionToWire) : c.actions,
  };
}

function signedToWire(s: SignedGroupChange): Record<string, unknown> {
  return { v: s.v, change: s.change, signature: s.signature };
}

/** Rejects any encoding other than the one the encoder produces for the decoded value. */
function requireCanonical(bytes: Uint8Array, wire: Record<string, unknown>, name: string): void {
  const again = encodeCbor(wire);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
    throw new ProtocolError('MALFORMED', `${name} is not canonically encoded`);
  }
}

/**
 * Decodes and validates a GroupChange (shape, bounds, genesis rules, canonical encoding). Who may
 * make the change is decided when it is applied to a group state, not here.
 * @example
 * const change = decodeGroupChange(decodeSignedGroupChange(bytes).change);
 * if (change.revision === 0) console.log('genesis by', change.author);
 */
export function decodeGroupChange(bytes: Uint8Array): GroupChange {
  const change = decodeVersioned(bytes, 'GroupChange', CHANGE_LIMITS, [1], readGroupChange);
  requireCanonical(bytes, changeToWire(change), 'GroupChange');
  return change;
}

/**
 * Encodes a GroupChange; throws the decoder's ProtocolError if `change` is invalid.
 * @example
 * const bytes = encodeGroupChange({ v: 1, groupId, revision: 0, parent: new Uint8Array(32),
 *   author: 'alice', authorIdentityKey, at: Date.now(),
 *   actions: [{ type: 'create', name: 'Trip', members: [{ accountId: 'alice', identityKey: authorIdentityKey, role: 'admin' }] }] });
 */
export function encodeGroupChange(change: GroupChange): Uint8Array {
  return encodeChecked(changeToWire(change), decodeGroupChange);
}

/**
 * Decodes a SignedGroupChange; the `change` bytes must themselves be a valid GroupChange. The
 * signature is checked by the client against the author's key in its group state.
 * @example
 * const signed = decodeSignedGroupChange(groupUpdate.change);
 * const change = decodeGroupChange(signed.change);
 */
export function decodeSignedGroupChange(bytes: Uint8Array): SignedGroupChange {
  const signed = decodeVersioned(bytes, 'SignedGroupChange', SIGNED_LIMITS, [1], (r): SignedGroupChange => ({
    v: 1,
    change: r.bytes('change', { minLength: 1, maxLength: MAX_GROUP_CHANGE_RECORD_BYTES }),
    signature: r.bytes('signature', { length: SIGNATURE_LENGTH }),
  }));
  requireCanonical(bytes, signedToWire(signed), 'SignedGroupChange');
  decodeGroupChange(signed.change);
  return signed;
}

/**
 * Encodes a SignedGroupChange.
 * @example
 * const change = encodeGroupChange(value);
 * const bytes = encodeSignedGroupChange({ v: 1, change, signature: await engine.sign(identityKeyPair, change) });
 */
export function encodeSignedGroupChange(signed: SignedGroupChange): Uint8Array {
  return encodeChecked(signedToWire(signed), decodeSignedGroupChange);
}

/**
 * The id of a change in the log: SHA-256 (WebCrypto) of the encoded GroupChange — the signed
 * bytes, without the signature, so a re-encoded or re-signed copy of one change is the same node.
 * @example
 * const parent = await hashGroupChange(decodeSignedGroupChange(bytes).change);
 */
export async function hashGroupChange(changeBytes: Uint8Array): Promise<Uint8Array> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new Uint8Array(changeBytes));
  return new Uint8Array(digest);
}
