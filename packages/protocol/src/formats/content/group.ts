import { PROFILE_KEY_LENGTH } from './profile-key.js';
import { compact } from '../../codec/fields.js';
import { type ContentTypeCodec, readGroupId } from './common.js';

/** Largest opaque group-change record. */
export const MAX_GROUP_CHANGE_BYTES = 60 * 1024;
/** Largest sender-key distribution message (libsignal's are about 100 bytes). */
export const MAX_SENDER_KEY_DISTRIBUTION_BYTES = 1024;
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
