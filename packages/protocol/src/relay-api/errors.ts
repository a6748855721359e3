/**
 * Stable error codes of the relay API. Every failed HTTP response carries a JSON body
 * `{ code, message }` and every failed WebSocket response frame an `error: { code, message }`;
 * clients branch on `code`, never on `message`.
 */
export type RelayErrorCode =
  /** Request body or query is not valid JSON / CBOR, or a field is missing or malformed. 400. */
  | 'BAD_REQUEST'
  /** A CBOR structure (device record, prekey, frame) failed protocol validation. 400. */
  | 'INVALID_FORMAT'
  /** Missing, malformed or wrong credentials, or an unknown/expired/used ticket or link token. 401. */
  | 'UNAUTHORIZED'
  /** Authenticated, but acting on another account's resources. 403. */
  | 'FORBIDDEN'
  /** The credentials are right, but the relay's operator suspended the account. 403. */
  | 'ACCOUNT_SUSPENDED'
  /** No such route, user, device, or attachment. 404. */
  | 'NOT_FOUND'
  /** The relay takes no new accounts (`--registration closed`); further devices still link. 403. */
  | 'REGISTRATION_CLOSED'
  /** The relay takes new accounts only with an invite code from its operator, and none was given. 403. */
  | 'INVITE_REQUIRED'
  /** The invite code is unknown, already used, revoked or expired. 403. */
  | 'INVITE_INVALID'
  /** The username (case-insensitive) or account id is already registered. 409. */
  | 'USERNAME_TAKEN'
  /** A send's device list does not match the recipient's devices; body lists `missing`/`extra`. 409. */
  | 'MISMATCHED_DEVICES'
  /** A send named a device whose registration id changed; body lists `stale`. 410. */
  | 'STALE_DEVICES'
  /** The request body exceeds its limit (with or without Content-Length). 413. */
  | 'PAYLOAD_TOO_LARGE'
  /** The Range header cannot be satisfied. 416. */
  | 'RANGE_NOT_SATISFIABLE'
  /** Rate limit exceeded; `retryAfterMs` in the body, `Retry-After` header in seconds. 429. */
  | 'RATE_LIMITED'
  /** The account already has the maximum number of devices. 409. */
  | 'TOO_MANY_DEVICES'
  /** A provisioning mailbox already holds a message (each carries one). 409. */
  | 'MAILBOX_OCCUPIED'
  /** A profile write's `version` is not above the stored one; body has `current`. 409. */
  | 'VERSION_CONFLICT'
  /** A resumable upload's part does not start where the upload stands; body has `offset`. 409. */
  | 'UPLOAD_OFFSET_MISMATCH'
  /** A part of that resumable upload is being written right now. 409. */
  | 'UPLOAD_BUSY'
  /** The account already has the maximum number of unfinished resumable uploads. 409. */
  | 'TOO_MANY_UPLOADS'
  /**
   * The relay's disk is full: nothing of the request was stored (a resumable upload keeps the
   * bytes it acknowledged). Retry after `retryAfterMs`; the operator must free space. 507.
   */
  | 'STORAGE_FULL'
  /** Unexpected server failure. Never carries details. 500. */
  | 'INTERNAL';

/** HTTP status for each {@link RelayErrorCode}; WebSocket response frames use the same numbers. */
export const RELAY_ERROR_STATUS: Readonly<Record<RelayErrorCode, number>> = Object.freeze({
  BAD_REQUEST: 400,
  INVALID_FORMAT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  ACCOUNT_SUSPENDED: 403,
  REGISTRATION_CLOSED: 403,
  INVITE_REQUIRED: 403,
  INVITE_INVALID: 403,
  NOT_FOUND: 404,
  USERNAME_TAKEN: 409,
  MISMATCHED_DEVICES: 409,
  TOO_MANY_DEVICES: 409,
  MAILBOX_OCCUPIED: 409,
  VERSION_CONFLICT: 409,
  UPLOAD_OFFSET_MISMATCH: 409,
  UPLOAD_BUSY: 409,
  TOO_MANY_UPLOADS: 409,
  STALE_DEVICES: 410,
  PAYLOAD_TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  STORAGE_FULL: 507,
});

/** The JSON body of every failed relay response. Extra fields depend on the code. */
export interface RelayErrorBody {
  code: RelayErrorCode;
  message: string;
  /** MISMATCHED_DEVICES: devices the request lacked / named but that do not exist (per account). */
  mismatched?: MismatchedDevices[];
  /** STALE_DEVICES: devices whose registration id differed (per account). */
  stale?: StaleDevices[];
  /** RATE_LIMITED, STORAGE_FULL: how long to wait. */
  retryAfterMs?: number;
  /** VERSION_CONFLICT: the version the relay holds (a recovery's: its write time, null when there is none). */
  current?: number | null;
  /** UPLOAD_OFFSET_MISMATCH: the bytes of the upload the relay holds, where the next part must start. */
  offset?: number;
  /** UNAUTHORIZED of a sealed multi-recipient send: the accounts whose access key was refused. */
  accounts?: string[];
}

export interface MismatchedDevices {
  accountId: string;
  missing: number[];
  extra: number[];
}

export interface StaleDevices {
  accountId: string;
  stale: number[];
}

/**
 * True when `value` looks like a relay error body.
 * @example
 * const body = await res.json();
 * if (isRelayErrorBody(body) && body.code === 'MISMATCHED_DEVICES') refreshDevices(body.mismatched);
 */
export function isRelayErrorBody(value: unknown): value is RelayErrorBody {
  return (
    typeof value === 'object' && value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    (value as { code: string }).code in RELAY_ERROR_STATUS
  );
}
