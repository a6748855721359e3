import { PROFILE_KEY_LENGTH } from './profile-key.js';
import { compact } from '../../codec/fields.js';
import { ProtocolError } from '../../errors.js';
import { MAX_DEVICE_ID } from '../common.js';
import { type ContentTypeCodec, readGroupId } from './common.js';

/** Largest opaque group-change record. */
export const MAX_GROUP_CHANGE_BYTES = 60 * 1024;
/** Largest sender-key distribution message (libsignal's are about 100 bytes). */
export const MAX_SENDER_KEY_DISTRIBUTION_BYTES = 1024;
/** Length of a group change's hash, its `parent` field and a `groupLogRequest`'s hashes. */
export const GROUP_CHANGE_HASH_LENGTH = 32;
/** Most hashes a `groupLogRequest` lists as already known to the asker. */
export const MAX_GROUP_LOG_REQUEST_HAVE = 32;
/** Canonical lowercase UUID text. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `groupUpdate` v1 — an admin-signed group change, opaque here (defined by the groups section),
 * optionally with the sender's new sender-key distribution message.
 *
 * ```text
 * body = { v: 1, groupId: bytes(32), change: bytes (1..61440), senderKeyDistribution?: bytes (<= 1024) }
 * ```
 * The change is capped below 64 KiB so the whole Content fits its 64 KiB limit.
 */
export interface GroupUpdateBody {
  groupId: Uint8Array;
  change: Uint8Array;
  senderKeyDistribution?: Uint8Array;
}

/**
 * `senderKeyDistribution` v1 — a libsignal SenderKeyDistributionMessage for one distribution id,
 * sent pairwise to each member device; with the sender's profile key, so that members who are
 * not its contacts can show its profile.
 *
 * ```text
 * body = { v: 1, distributionId: uuid text (lowercase), message: bytes (1..1024), profileKey?: bytes(32) }
 * ```
 */
export interface SenderKeyDistributionBody {
  distributionId: string;
  message: Uint8Array;
  /** The sender's profile key (`profileKey` content's `key`). */
  profileKey?: Uint8Array;
}

/**
 * `groupLogRequest` v1 — "a change of this group names a parent I do not have": sent pairwise by
 * a member whose log buffered a change, to the device that sent it, which answers with the
 * missing changes as `groupUpdate`s (only to a current member). `missing` is the first unknown
 * ancestor; `have` lists the asker's latest canonical hashes, newest first, so that the answer
 * stops where the asker's log already is; `deviceId` names the device asked (the others of its
 * account ignore the request).
 *
 * ```text
 * body = { v: 1, groupId: bytes(32), missing: bytes(32), have: [bytes(32)] (<= 32), deviceId?: uint (1..2^31-1) }
 * ```
 */
export interface GroupLogRequestBody {
  groupId: Uint8Array;
  missing: Uint8Array;
  have: Uint8Array[];
  deviceId?: number;
}

const changeHash = (value: unknown, path: string): Uint8Array => {
  if (!(value instanceof Uint8Array) || value.length !== GROUP_CHANGE_HASH_LENGTH) {
    throw new ProtocolError('INVALID_FIELD', `${path} is not a ${GROUP_CHANGE_HASH_LENGTH}-byte change hash`, { field: path });
  }
  return new Uint8Array(value);
};

export const groupLogRequestContent: ContentTypeCodec<GroupLogRequestBody> = {
  version: 1,
  encode: (b) => compact({ groupId: b.groupId, missing: b.missing, have: b.have, deviceId: b.deviceId }),
  decode: (r) =>
    compact({
      groupId: readGroupId(r, 'groupId'),
      missing: r.bytes('missing', { length: GROUP_CHANGE_HASH_LENGTH }),
      have: r.array('have', MAX_GROUP_LOG_REQUEST_HAVE, changeHash),
      deviceId: r.optUint('deviceId', { min: 1, max: MAX_DEVICE_ID }),
    }),
  fallback: () => '',
};

export const groupUpdateContent: ContentTypeCodec<GroupUpdateBody> = {
  version: 1,
  encode: (b) => compact({ groupId: b.groupId, change: b.change, senderKeyDistribution: b.senderKeyDistribution }),
  decode: (r) =>
    compact({
      groupId: readGroupId(r, 'groupId'),
      change: r.bytes('change', { minLength: 1, maxLength: MAX_GROUP_CHANGE_BYTES }),
      senderKeyDistribution: r.optBytes('senderKeyDistribution', { minLength: 1, maxLength: MAX_SENDER_KEY_DISTRIBUTION_BYTES }),
    }),
  fallback: () => 'Updated the group',
};

export const senderKeyDistributionContent: ContentTypeCodec<SenderKeyDistributionBody> = {
  version: 1,
  encode: (b) => compact({ distributionId: b.distributionId, message: b.message, profileKey: b.profileKey }),
  decode: (r) =>
    compact({
      distributionId: r.string('distributionId', { minLength: 36, maxLength: 36, pattern: UUID_PATTERN }),
      message: r.bytes('message', { minLength: 1, maxLength: MAX_SENDER_KEY_DISTRIBUTION_BYTES }),
      profileKey: r.optBytes('profileKey', { length: PROFILE_KEY_LENGTH }),
    }),
  fallback: () => '',
};
