import { blob, foreignKey, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * The relay's whole SQLite schema. It holds only what ARCHITECTURE §2 lets the relay learn:
 * usernames, device lists and public keys, opaque ciphertext queued per device, request/block
 * state, attachment metadata, sealed profiles, sealed recovery records and abuse reports.
 * Credentials, link tokens, recovery secrets and tokens and access keys are stored as SHA-256
 * hashes only (WebSocket tickets live in memory: tickets.ts). Timestamps are milliseconds since the epoch.
 */

const bytes = (name: string) => blob(name, { mode: 'buffer' });

export const accounts = sqliteTable('accounts', {
  id: text('id').primaryKey(),
  /** Lower-cased; uniqueness is therefore case-insensitive. */
  username: text('username').notNull().unique(),
  createdAt: integer('created_at').notNull(),
  /** Next device id handed out by a link token (device 1 is the registering device). */
  nextDeviceId: integer('next_device_id').notNull().default(2),
  /** Set by the operator (`/admin/v1`): the account cannot sign in and is hidden from others. */
  suspendedAt: integer('suspended_at'),
  /**
   * SHA-256 of the access key a sealed send to this account must present (the key itself is
   * HKDF of the profile key, which only contacts hold); null: no sealed sends accepted.
   */
  accessKeyHash: bytes('access_key_hash'),
  /**
   * Sealed sends to this account are accepted with any access key (its owner's choice: strangers
   * may write to it sealed, and the relay cannot drop a blocked sender's sealed sends to it).
   */
  sealedFromAnyone: integer('sealed_from_anyone', { mode: 'boolean' }).notNull().default(false),
});

export const devices = sqliteTable('devices', {
  accountId: text('account_id').notNull().references(() => accounts.id, { onDelete: 'cascade' }),
  deviceId: integer('device_id').notNull(),
  registrationId: integer('registration_id').notNull(),
  /** Encoded SignedDeviceRecord exactly as received (clients verify its signature). */
  signedRecord: bytes('signed_record').notNull(),
  createdAt: integer('created_at').notNull(),
}, (t) => [primaryKey({ columns: [t.accountId, t.deviceId] })]);

const deviceRef = (t: { accountId: any; deviceId: any }) =>
  foreignKey({ columns: [t.accountId, t.deviceId], foreignColumns: [devices.accountId, devices.deviceId] }).onDelete('cascade');

export const deviceCredentials = sqliteTable('device_credentials', {
  accountId: text('account_id').notNull(),
  deviceId: integer('device_id').notNull(),
  /** SHA-256 of the client-generated 32-byte secret. */
  secretHash: bytes('secret_hash').notNull(),
}, (t) => [primaryKey({ columns: [t.accountId, t.deviceId] }), deviceRef(t)]);

/**
 * The protocol engine a prekey belongs to (ARCHITECTURE §3): a device that speaks both keeps
 * one set of each, and a bundle is built from one engine's set.
 */
const engine = () => text('engine', { enum: ['libsignal', 'web'] }).notNull().default('libsignal');

export const signedPreKeys = sqliteTable('signed_prekeys', {
  accountId: text('account_id').notNull(),
  deviceId: integer('device_id').notNull(),
  engine: engine(),
  keyId: integer('key_id').notNull(),
  record: bytes('record').notNull(),
}, (t) => [primaryKey({ columns: [t.accountId, t.deviceId, t.engine] }), deviceRef(t)]);

export const kyberPreKeys = sqliteTable('kyber_prekeys', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  accountId: text('account_id').notNull(),
  deviceId: integer('device_id').notNull(),
  engine: engine(),
  keyId: integer('key_id').notNull(),
  /** 1 for the last-resort key (one per device and engine, never consumed). */
  lastResort: integer('last_resort', { mode: 'boolean' }).notNull(),
  record: bytes('record').notNull(),
}, (t) => [
  deviceRef(t),
  uniqueIndex('kyber_prekeys_key').on(t.accountId, t.deviceId, t.engine, t.keyId),
  index('kyber_prekeys_device').on(t.accountId, t.deviceId, t.engine, t.lastResort, t.id),
]);

export const oneTimePreKeys = sqliteTable('one_time_prekeys', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  accountId: text('account_id').notNull(),
  deviceId: integer('device_id').notNull(),
  engine: engine(),
  keyId: integer('key_id').notNull(),
  record: bytes('record').notNull(),
}, (t) => [
  deviceRef(t),
  uniqueIndex('one_time_prekeys_key').on(t.accountId, t.deviceId, t.engine, t.keyId),
  index('one_time_prekeys_device').on(t.accountId, t.deviceId, t.engine, t.id),
]);

/** Per-device queue. `seq` orders delivery; a row is deleted only on the recipient's ack. */
export const envelopes = sqliteTable('envelopes', {
  seq: integer('seq').primaryKey({ autoIncrement: true }),
  guid: text('guid').notNull().unique(),
  accountId: text('account_id').notNull(),
  deviceId: integer('device_id').notNull(),
  /**
   * Sender account/device (a receipt's: the acking device). A sealed envelope has no sender:
   * `''` and `0`, which no account or device can be (see NO_SENDER in envelope-repo.ts).
   */
  senderAccountId: text('sender_account_id').notNull(),
  senderDeviceId: integer('sender_device_id').notNull(),
  type: text('type').notNull(),
  ciphertext: bytes('ciphertext').notNull(),
  serverTimestamp: integer('server_timestamp').notNull(),
}, (t) => [
  // No foreign key to `devices` and no index on the timestamp: every send inserts and every
  // ack deletes a row here, and each of those was one B-tree and one lookup more per row.
  // Removing a device deletes its envelopes (AccountRepo); expiry walks `seq`, which grows with
  // time (EnvelopeRepo.expire).
  index('envelopes_queue').on(t.accountId, t.deviceId, t.seq),
]);

/**
 * Young envelopes, written one row per commit: every envelope a commit queues goes into ONE
 * row here (`rows`: the envelopes as `envelopes` would hold them, CBOR-encoded, see
 * EnvelopeRepo), instead of one `envelopes` row each; the relay keeps them indexed in memory.
 * Most are acked within moments, and the row is deleted when the last of its envelopes is. A
 * batch still partly unacked after a few seconds is moved ("spilled") into `envelopes`, and a
 * relay that stopped spills every batch at start. `id` is the `seq` of the batch's first
 * envelope; seqs continue `envelopes`' own, so a spilled envelope keeps its place in the queue.
 */
export const envelopeBatches = sqliteTable('envelope_batches', {
  id: integer('id').primaryKey(),
  rows: bytes('rows').notNull(),
});

/** Which envelopes of a batch were acked (or otherwise removed): one bit per envelope, in order. */
export const envelopeBatchAcks = sqliteTable('envelope_batch_acks', {
  batchId: integer('batch_id').primaryKey(),
  acked: bytes('acked').notNull(),
});

/**
 * A multi-recipient send accepted but not yet expanded into its per-device `envelopes` rows:
 * one shared ciphertext and the recipient list, so that the send is durable after writing one
 * row. The expansion runs in the commit right after the accepting one (ahead of every later
 * write) and deletes the row; a relay that stopped in between expands what is left on start.
 * The n-th device of the list gets the guid `guidPrefix` + n in four hex digits (the guids the
 * sender was answered with); devices of `skipped` accounts (who block the sender) get no row.
 */
export const fanouts = sqliteTable('fanouts', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  guidPrefix: text('guid_prefix').notNull(),
  senderAccountId: text('sender_account_id').notNull(),
  senderDeviceId: integer('sender_device_id').notNull(),
  type: text('type').notNull(),
  ciphertext: bytes('ciphertext').notNull(),
  serverTimestamp: integer('server_timestamp').notNull(),
  /** The send's recipient list as the protocol packs it (`encodeRecipientList`): account and device ids. */
  recipients: bytes('recipients').notNull(),
  /** JSON array of the listed account ids that get nothing. */
  skipped: text('skipped').notNull(),
});

/**
 * Request / block / restrict state that `ownerId` holds about `peerId`.
 * state: 'pending' (peer's messages arrived, owner has not answered), 'accepted', 'blocked', or
 * null (no state, only `restricted`).
 */
export const relationships = sqliteTable('relationships', {
  ownerId: text('owner_id').notNull().references(() => accounts.id, { onDelete: 'cascade' }),
  peerId: text('peer_id').notNull(),
  state: text('state', { enum: ['pending', 'accepted', 'blocked'] }),
  restricted: integer('restricted', { mode: 'boolean' }).notNull().default(false),
  /** When the state last changed (request time for 'pending'). */
  since: integer('since').notNull(),
  restrictedSince: integer('restricted_since'),
}, (t) => [primaryKey({ columns: [t.ownerId, t.peerId] }), index('relationships_state').on(t.ownerId, t.state)]);

export const linkTokens = sqliteTable('link_tokens', {
  tokenHash: bytes('token_hash').primaryKey(),
  accountId: text('account_id').notNull().references(() => accounts.id, { onDelete: 'cascade' }),
  deviceId: integer('device_id').notNull(),
  expiresAt: integer('expires_at').notNull(),
});

export const blobs = sqliteTable('blobs', {
  id: text('id').primaryKey(),
  uploaderId: text('uploader_id').notNull(),
  size: integer('size').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
}, (t) => [index('blobs_expiry').on(t.expiresAt)]);

/**
 * Resumable attachment uploads not yet finished: the declared size and how many bytes of it
 * are durable in the blob store's upload file. The last part turns one into a `blobs` row.
 */
export const uploads = sqliteTable('uploads', {
  id: text('id').primaryKey(),
  uploaderId: text('uploader_id').notNull(),
  size: integer('size').notNull(),
  received: integer('received').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
}, (t) => [index('uploads_expiry').on(t.expiresAt), index('uploads_uploader').on(t.uploaderId)]);

/**
 * Each account's profile (display name, bio, avatar pointer) as its client sealed it with the
 * profile key only its contacts get: the relay stores and serves the bytes, never reads them.
 * `version` only grows (a write must name a higher one); `avatar_blob` is the attachment blob
 * the profile names, kept while it is named (see ProfileRepo). Deleted with the account.
 */
export const profiles = sqliteTable('profiles', {
  accountId: text('account_id').primaryKey().references(() => accounts.id, { onDelete: 'cascade' }),
  version: integer('version').notNull(),
  ciphertext: bytes('ciphertext').notNull(),
  avatarBlob: text('avatar_blob'),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * Each account's recovery from an encrypted backup (services/recovery.ts): the SHA-256 of the
 * recovery secret a new device presents (derived from the recovery code the user wrote down),
 * the backup record as the client sealed it with a backup key the relay never sees, and the
 * attachment blob holding the encrypted snapshot, kept while it is named (as a profile's
 * avatar). Deleted with the account.
 */
export const accountRecovery = sqliteTable('account_recovery', {
  accountId: text('account_id').primaryKey().references(() => accounts.id, { onDelete: 'cascade' }),
  secretHash: bytes('secret_hash').notNull(),
  sealed: bytes('sealed').notNull(),
  blobId: text('blob_id'),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * Recovery tokens (`POST /v1/recovery/start`), by SHA-256: each lets one reserved device id of
 * the account register at `POST /v1/recovery/devices`. A table of their own rather than a
 * `purpose` column on `link_tokens`: a link token is looked up only in `link_tokens` and a
 * recovery token only here, so neither can ever be taken for the other (no query has to
 * remember to filter), and a recovery token carries what a link token has no use for:
 * `secret_hash`, the recovery secret hash the account's recovery held when the token was made
 * (the token is refused if the recovery was replaced or deleted since).
 */
export const recoveryTokens = sqliteTable('recovery_tokens', {
  tokenHash: bytes('token_hash').primaryKey(),
  accountId: text('account_id').notNull().references(() => accounts.id, { onDelete: 'cascade' }),
  deviceId: integer('device_id').notNull(),
  secretHash: bytes('secret_hash').notNull(),
  expiresAt: integer('expires_at').notNull(),
});

/**
 * The operator's invite codes (`--registration invite`), by the SHA-256 of the code (the code
 * itself is shown once, when it is made). Single use: `usedAt` and `usedBy` once an account
 * registered with it; a revoked code's row is deleted.
 */
export const invites = sqliteTable('invites', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  codeHash: bytes('code_hash').notNull().unique(),
  note: text('note'),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at'),
  /** The account that registered with it (kept as it was if that account is deleted). */
  usedBy: text('used_by'),
});

export const reports = sqliteTable('reports', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  reporterId: text('reporter_id').notNull(),
  reportedId: text('reported_id').notNull(),
  reason: text('reason').notNull(),
  evidence: bytes('evidence'),
  createdAt: integer('created_at').notNull(),
});

