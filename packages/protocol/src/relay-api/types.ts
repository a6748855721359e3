/**
 * JSON request and response bodies of the relay's HTTP API (v1). Binary values travel as
 * unpadded base64url strings (type {@link B64}); CBOR structures (device records, prekeys,
 * bundles, envelopes) are the encodings defined in `@sotto/protocol` formats, base64url-wrapped.
 * See docs/relay-api.md for every endpoint with examples.
 */
import type { EngineName } from '../formats/device-record.js';

/** Unpadded base64url of raw bytes. */
export type B64 = string;

/** Account id: the lower-case username, `[a-z0-9._]{3,32}` (as in DeviceRecord.accountId). */
export type AccountId = string;

/** Keys every device uploads at registration or link time. */
export interface DeviceKeyUpload {
  /**
   * Encoded SignedDeviceRecord (CBOR). Its accountId must be the username (registration) or the
   * link token's account, its deviceId 1 (registration) or the link token's device id; its
   * registrationId is the one stale-device checks use. The relay does not verify the signature.
   */
  signedDeviceRecord: B64;
  /** Encoded SignedPreKeyPublic. */
  signedPreKey: B64;
  /** Encoded KyberPreKeyPublic used when one-time Kyber prekeys run out. */
  lastResortKyberPreKey: B64;
  /** Encoded one-time KyberPreKeyPublic values (at most 100). */
  kyberPreKeys?: B64[];
  /** Encoded OneTimePreKeyPublic values (at most 100). */
  oneTimePreKeys?: B64[];
}

/** `POST /v1/accounts` — first device of a new account. */
export interface RegisterAccountRequest extends DeviceKeyUpload {
  /** `[a-z0-9._]{3,32}`, unique case-insensitively (input is lower-cased). */
  username: string;
  /** Client-generated 32-byte device secret; the relay keeps only its SHA-256. */
  secret: B64;
  /** The operator's single-use invite code, on a relay whose registration mode is `invite` (ignored otherwise). */
  inviteCode?: string;
}

/** Who may register a new account at a relay (`--registration`). */
export type RegistrationMode = 'open' | 'invite' | 'closed';

/** `GET /v1/registration` response: whether a new account needs an invite code. */
export interface RegistrationInfo {
  mode: RegistrationMode;
}

/** `POST /v1/accounts` / `POST /v1/devices` response. */
export interface RegisterResponse {
  accountId: AccountId;
  deviceId: number;
}

/** `POST /v1/devices/link-tokens` response. */
export interface LinkTokenResponse {
  /** Single-use token, valid for `expiresAt - now` (10 minutes). */
  token: string;
  /** The device id the linked device must put in its device record. */
  deviceId: number;
  accountId: AccountId;
  expiresAt: number;
}

/** `POST /v1/devices` — register a further device with a link token. */
export interface LinkDeviceRequest extends DeviceKeyUpload {
  linkToken: string;
  secret: B64;
}

/**
 * `PUT /v1/provisioning/:address` body and `GET /v1/provisioning/:address` response: one sealed
 * provision message (formats/provisioning.ts), opaque to the relay.
 */
export interface ProvisioningMessageBody {
  message: B64;
}

/** One device as listed by `GET /v1/users/:username/devices`. */
export interface DeviceListing {
  deviceId: number;
  registrationId: number;
  signedDeviceRecord: B64;
}

/** `GET /v1/users/:username/devices` response. */
export interface UserDevicesResponse {
  accountId: AccountId;
  username: string;
  devices: DeviceListing[];
  /**
   * Present (true) when the account takes sealed sends from anyone: a sender without its access
   * key may seal to it, presenting any 16-byte key (`SetAccessKeyRequest.anyone`).
   */
  sealedFromAnyone?: true;
}

/** `PUT /v1/keys/signed` — replace the signed prekey and/or the last-resort Kyber prekey. */
export interface SetSignedKeysRequest {
  signedPreKey?: B64;
  lastResortKyberPreKey?: B64;
  /** The engine these keys serve (default `libsignal`); its KEM key must be of that engine's type. */
  engine?: EngineName;
}

/** `POST /v1/keys/one-time` — append at most 100 of each. */
export interface UploadOneTimeKeysRequest {
  oneTimePreKeys?: B64[];
  kyberPreKeys?: B64[];
  /** The engine these keys serve (default `libsignal`). */
  engine?: EngineName;
}

/** `GET /v1/keys/count` response. */
export interface PreKeyCountResponse {
  oneTimePreKeys: number;
  kyberPreKeys: number;
}

/** One device's bundle in `GET /v1/keys/:accountId`. */
export interface DeviceBundle {
  deviceId: number;
  registrationId: number;
  /** Encoded PreKeyBundle (CBOR): device record, signed prekey, Kyber prekey, optional one-time prekey. */
  bundle: B64;
}

/** `GET /v1/keys/:accountId` response. */
export interface PreKeyBundlesResponse {
  accountId: AccountId;
  devices: DeviceBundle[];
}

/** Envelope types a client may send. `receipt` envelopes are created only by the relay. */
export type SendableEnvelopeType = 'prekey' | 'whisper' | 'senderkey' | 'plaintext';

/** One per-device ciphertext in a send. */
export interface OutgoingDeviceMessage {
  deviceId: number;
  registrationId: number;
  /** Overrides the request's `type` for this device (e.g. `prekey` for a new session). */
  type?: SendableEnvelopeType;
  ciphertext: B64;
}

/**
 * `POST /v1/messages/:accountId` — one ciphertext per device of the recipient. The device list
 * must be exact, except for `plaintext` sends (resend requests), which may name any subset.
 */
export interface SendRequest {
  type: SendableEnvelopeType;
  messages: OutgoingDeviceMessage[];
  /** Online-only: pushed to connected devices, never stored, no receipts. */
  ephemeral?: boolean;
}

/** `POST /v1/messages/:accountId` / multi-send response. */
export interface SendResponse {
  /** Server timestamp (ms) assigned to every envelope of this send. */
  serverTimestamp: number;
  /** One guid per stored envelope, in request order (empty for ephemeral sends). */
  guids: string[];
}

/** Bytes of an access key: HKDF-SHA256(profile key, "sotto-access-key"), see docs/protocol.md. */
export const ACCESS_KEY_LENGTH = 16;
/** The header a sealed send carries its access key in (base64url), instead of credentials. */
export const ACCESS_KEY_HEADER = 'sotto-access-key';

/**
 * `PUT /v1/access-key` (auth): the access key senders must present to send this account sealed
 * envelopes; the relay keeps only a hash of it. `DELETE /v1/access-key` turns sealed receiving off.
 */
export interface SetAccessKeyRequest {
  accessKey: B64;
  /**
   * Whether sealed sends are accepted with any access key, from strangers too (`true`), or only
   * with this one (`false`); absent: as before. Off until set; `DELETE /v1/access-key` ends it.
   */
  anyone?: boolean;
}

/**
 * `POST /v1/messages/sealed/:accountId`, with no credentials and the recipient's access key in
 * the {@link ACCESS_KEY_HEADER} header: one sealed-sender ciphertext per device of the recipient
 * (the device list must be exact, as for any send). Stored as `sealed` envelopes without a sender;
 * no delivery receipts, no request or block state (the relay does not know the sender).
 */
export interface SealedSendRequest {
  messages: { deviceId: number; registrationId: number; ciphertext: B64 }[];
  /** Online-only (typing, call signalling): pushed to connected devices, never stored; `guids` is `[]`. Not in a batch. */
  ephemeral?: boolean;
  /**
   * The send addresses exactly one device (`messages` has one entry) and the rest of the
   * account's devices are not required: a sealed resend request, which concerns one device, as
   * a `plaintext` envelope does. Stored (not with `ephemeral`). Not in a batch.
   */
  oneDevice?: boolean;
}

/**
 * `POST /v1/messages/sealed/:accountId/batch`, with the same header: 1 to `MAX_BATCH_SENDS`
 * sealed sends to one account, each with the body of one {@link SealedSendRequest} (stored:
 * `ephemeral` is not read). Stored whole
 * and in order, or not at all; answered with a `BatchSendResponse` (one guid list per send).
 */
export interface SealedBatchSendRequest {
  sends: SealedSendRequest[];
}

/**
 * `POST /v1/messages/sealed/multi`, with no `Authorization` and no access-key header: one group
 * message sealed once (`sealForGroup`) to many accounts' devices, each account with its access
 * key. The relay stores (or, `ephemeral`, only pushes) one `sealed` envelope per device, whose
 * ciphertext is `assembleSealedGroupMessage({ eph, body }, header)`; all or nothing. Answered
 * with a `SendResponse` (guids in the order of the devices listed). A wrong key for any account
 * is 401 for the whole send, with `details.accounts` naming the accounts refused.
 */
export interface SealedMultiSendRequest {
  /** The ephemeral public key, 32 bytes. */
  eph: B64;
  /** The sealed body, shared by every device. */
  body: B64;
  recipients: {
    accountId: AccountId;
    /** That account's access key (16 bytes). */
    accessKey: B64;
    /** Every device of the account (the device-list check of an ordinary send), each with its 48-byte header. */
    devices: { deviceId: number; registrationId: number; header: B64 }[];
  }[];
  /** Online-only (group typing): pushed to connected devices, never stored; `guids` is `[]`. */
  ephemeral?: boolean;
}

/** `POST /v1/messages/multi` — one group ciphertext to many accounts' devices. */
export interface MultiSendRequest {
  type: SendableEnvelopeType;
  ciphertext: B64;
  recipients: { accountId: AccountId; devices: { deviceId: number; registrationId: number }[] }[];
  ephemeral?: boolean;
}

/** `GET /v1/messages?after=<cursor>&limit=<n>` response. */
export interface BacklogResponse {
  /** Encoded Envelope values (CBOR), oldest first. */
  envelopes: B64[];
  /** Pass as `after` to get the next page; absent when the page was the last. */
  next?: string;
}

/** `POST /v1/messages/ack`. */
export interface AckRequest {
  guids: string[];
}

/** `POST /v1/ws-ticket` response. */
export interface WsTicketResponse {
  ticket: string;
  expiresAt: number;
}

/** One entry of `GET /v1/requests`. */
export interface MessageRequestEntry {
  accountId: AccountId;
  username: string;
  createdAt: number;
}

export interface MessageRequestsResponse {
  requests: MessageRequestEntry[];
}

export interface CountResponse {
  count: number;
}

/** `GET /v1/blocks` and `GET /v1/restricts`. */
export interface AccountListResponse {
  accounts: { accountId: AccountId; username: string; since: number }[];
}

/** `POST /v1/reports`. */
export interface ReportRequest {
  accountId: AccountId;
  /** Free-text reason, at most 1000 characters. */
  reason: string;
  /** Evidence the reporter chooses to reveal (e.g. decrypted messages), at most 64 KiB. */
  evidence?: B64;
}

export interface ReportResponse {
  id: number;
}

/** Most bytes of a profile's ciphertext (`PUT /v1/profile`); clients pad profiles below it. */
export const MAX_PROFILE_CIPHERTEXT_BYTES = 8192;

/**
 * `PUT /v1/profile`: this account's profile, sealed by the client with its profile key (the
 * relay stores it as it is). `version` must be above the stored one (409 `VERSION_CONFLICT`
 * otherwise). `avatar` names an attachment blob this account uploaded: the relay keeps it for as
 * long as the profile names it, and lets the one it replaces expire.
 */
export interface SetProfileRequest {
  version: number;
  ciphertext: B64;
  avatar?: string | null;
}

/** `GET /v1/profiles/:accountId`: the sealed profile, as its owner stored it. */
export interface ProfileResponse {
  accountId: AccountId;
  version: number;
  ciphertext: B64;
}

/** Most bytes of a sealed recovery record (`PUT /v1/recovery`). */
export const MAX_RECOVERY_SEALED_BYTES = 8192;
/** Bytes of a recovery secret: derived by the client from the recovery code (the relay keeps its SHA-256). */
export const RECOVERY_SECRET_LENGTH = 32;

/**
 * `PUT /v1/recovery` (auth): stores or replaces this account's recovery. `secret` is what a new
 * device presents at `POST /v1/recovery/start` (the relay keeps only its SHA-256); `sealed` is
 * the backup record sealed with the backup key, which never reaches the relay. `blobId` names an
 * attachment blob this account uploaded (the encrypted snapshot): the relay keeps it for as long
 * as the recovery names it, and lets the one it replaces expire.
 */
export interface SetRecoveryRequest {
  /** Exactly {@link RECOVERY_SECRET_LENGTH} bytes. */
  secret: B64;
  /** 1 to {@link MAX_RECOVERY_SEALED_BYTES} bytes. */
  sealed: B64;
  blobId?: string;
  /**
   * Replace only the write made at this time (a device refreshing its own backup): 409
   * `VERSION_CONFLICT` with `current` (the stored time, or null when there is none) otherwise.
   */
  ifUpdatedAt?: number;
}

/** `PUT /v1/recovery` response. */
export interface SetRecoveryResponse {
  updatedAt: number;
}

/** `GET /v1/recovery` (auth) response: whether this account has a recovery, and when it was last set. */
export interface RecoveryStatusResponse {
  enabled: boolean;
  /** Present when `enabled`. */
  updatedAt?: number;
}

/**
 * `POST /v1/recovery/start` (no auth): a device that knows only the username and the recovery
 * code asks for the sealed record. An unknown username, an account without recovery and a wrong
 * secret are the same 401.
 */
export interface RecoveryStartRequest {
  username: string;
  secret: B64;
}

/** `POST /v1/recovery/start` response. */
export interface RecoveryStartResponse {
  accountId: AccountId;
  /** The device id the recovering device must put in its device record (above every earlier one). */
  deviceId: number;
  /** Single use, valid for `expiresAt - now` (10 minutes), only at `POST /v1/recovery/devices`. */
  recoveryToken: string;
  expiresAt: number;
  /** The sealed record exactly as `PUT /v1/recovery` stored it. */
  sealed: B64;
}

/**
 * `POST /v1/recovery/devices` (no auth): registers the recovering device, with the upload of
 * `POST /v1/devices` and the recovery token instead of a link token. Every other device of the
 * account is removed in the same commit.
 */
export interface RecoverDeviceRequest extends DeviceKeyUpload {
  recoveryToken: string;
  secret: B64;
}

/** `POST /v1/recovery/devices` response. */
export interface RecoverDeviceResponse {
  accountId: AccountId;
  deviceId: number;
  /** The devices removed (their connections closed with 4003), in id order. */
  removedDevices: number[];
}

/** `POST /v1/attachments` response, and that of the part that finishes a resumable upload. */
export interface AttachmentUploadResponse {
  id: string;
  size: number;
  expiresAt: number;
}

/** `POST /v1/attachments/uploads` request: a resumable upload of a blob of `size` bytes. */
export interface CreateUploadRequest {
  size: number;
}

/**
 * Where a resumable upload stands (`POST /v1/attachments/uploads` → 201, `GET` and each `PUT`
 * part that does not finish it → 200): the next part starts at `offset`.
 */
export interface ResumableUploadStatus {
  uploadId: string;
  offset: number;
  size: number;
  expiresAt: number;
}

/** The header of a resumable upload's `PUT` part: the byte offset the part starts at. */
export const UPLOAD_OFFSET_HEADER = 'upload-offset';

/** `GET /healthz` response. */
export interface HealthResponse {
  ok: true;
}
