import { SottoError } from '../errors.js';

/**
 * Why a group change was not applied. Stable strings: callers branch on them, and the SDK logs
 * them (never the change's content).
 */
export type GroupRejectionReason =
  /** The bytes are not a valid SignedGroupChange / GroupChange (`cause` is the ProtocolError). */
  | 'MALFORMED'
  /** The signature does not verify under the author's identity key. */
  | 'BAD_SIGNATURE'
  /** The change is for another group. */
  | 'WRONG_GROUP'
  /** `revision` is not the parent's revision + 1 (or not 0 for a genesis). */
  | 'WRONG_REVISION'
  /** `parent` is not the hash of the state the change is applied to. */
  | 'WRONG_PARENT'
  /** A second, different genesis for a group whose log already has one. */
  | 'CONFLICTING_GENESIS'
  /** A genesis whose author is not listed as an admin with the signing key. */
  | 'INVALID_GENESIS'
  /** The author has never been a member. */
  | 'AUTHOR_NOT_MEMBER'
  /** The author was a member but was removed or left. */
  | 'AUTHOR_REMOVED'
  /** The author is a member, but `authorIdentityKey` is not the key the group knows for them. */
  | 'AUTHOR_KEY_MISMATCH'
  /** A non-admin tried anything but `leave`. */
  | 'NOT_ADMIN'
  /** The change would leave members without any admin. */
  | 'LAST_ADMIN'
  /** `removeMember` / `setRole` names an account that is not a member. */
  | 'UNKNOWN_MEMBER'
  /** `addMembers` names an account that is already a member. */
  | 'ALREADY_MEMBER'
  /** The group would exceed MAX_GROUP_MEMBERS. */
  | 'TOO_MANY_MEMBERS'
  /** Too many changes are already waiting for an unknown parent. */
  | 'PENDING_LIMIT';

/**
 * A group change was refused. Code `NOT_ALLOWED`; `reason` says why.
 * @example
 * try { log = await GroupLog.create(genesis, verify); }
 * catch (err) { if (err instanceof GroupChangeRejectedError) console.warn(err.reason); else throw err; }
 */
export class GroupChangeRejectedError extends SottoError {
  readonly reason: GroupRejectionReason;

  constructor(reason: GroupRejectionReason, message: string, options: { cause?: unknown } = {}) {
    super('NOT_ALLOWED', `group change rejected (${reason}): ${message}`, { ...options, field: 'groupChange' });
    this.reason = reason;
  }
}
