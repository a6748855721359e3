/**
 * Every failure the SDK raises is a {@link SottoError} with a stable string `code`. Callers
 * branch on `code` (or the static {@link SottoError.is}), never on message text. Messages never
 * carry plaintext, keys or identifiers beyond what is needed to debug.
 *
 * Extend the {@link SottoErrorCode} union (one line with a comment) when a new failure needs a
 * distinct reaction from callers.
 */
export type SottoErrorCode =
  /** The storage backend failed (I/O, corrupt data, constraint); `cause` holds the original. */
  | 'STORAGE_FAILED'
  /** A record the operation needs does not exist. */
  | 'NOT_FOUND'
  /** An argument or record is malformed (wrong type, empty id, non-integer timestamp...). */
  | 'INVALID_ARGUMENT'
  /** The operation conflicts with stored state (e.g. an envelope already processed). */
  | 'CONFLICT'
  /** The object does not support this operation (e.g. a direct write to read-only stores). */
  | 'UNSUPPORTED'
  /** The object (storage, client) was closed. */
  | 'CLOSED'
  /** The relay answered with an error; `relayCode` and `status` say which. */
  | 'RELAY_ERROR'
  /** The relay could not be reached, or the connection dropped mid-request. */
  | 'NETWORK'
  /** A request to the relay did not complete in time. */
  | 'TIMEOUT'
  /** The client has no account yet (register or open one first). */
  | 'NOT_REGISTERED'
  /** A contact's identity key changed; sending waits for `acknowledgeIdentityChange`. */
  | 'IDENTITY_CHANGED'
  /** The action is not allowed (e.g. editing someone else's message, a closed edit window). */
  | 'NOT_ALLOWED'
  /** An attachment failed its size, digest or decryption check; no plaintext was returned. */
  | 'ATTACHMENT_INVALID'
  /** Anything else; `cause` holds the original. */
  | 'INTERNAL';

export interface SottoErrorOptions {
  cause?: unknown;
  /** The field or record kind the error is about (never its value). */
  field?: string;
  /** RELAY_ERROR: the relay's stable error code. */
  relayCode?: string;
  /** RELAY_ERROR: the HTTP (or WebSocket response) status. */
  status?: number;
  /** RELAY_ERROR: the relay's error body (mismatched / stale device lists, retryAfterMs). */
  details?: unknown;
}

/**
 * The SDK's one error base.
 * @example
 * try { await storage.commit(batch); }
 * catch (err) { if (SottoError.is(err, 'NOT_FOUND')) console.warn(err.field); else throw err; }
 */
export class SottoError extends Error {
  override readonly name = 'SottoError';
  readonly code: SottoErrorCode;
  readonly field?: string;
  readonly relayCode?: string;
  readonly status?: number;
  readonly details?: unknown;

  constructor(code: SottoErrorCode, message: string, options: SottoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.relayCode !== undefined) this.relayCode = options.relayCode;
    if (options.status !== undefined) this.status = options.status;
    if (options.details !== undefined) this.details = options.details;
  }

  /**
   * Narrow an unknown value to a SottoError, optionally of one code.
   * @example
   * if (SottoError.is(err, 'CLOSED')) reconnectStorage();
   */
  static is<C extends SottoErrorCode>(value: unknown, code?: C): value is SottoError & { code: C } {
    return value instanceof SottoError && (code === undefined || value.code === code);
  }

  /**
   * Wrap anything thrown by a dependency: SottoErrors pass through, the rest become `code`.
   * @example
   * catch (err) { throw SottoError.from(err, 'STORAGE_FAILED', 'sqlite commit failed'); }
   */
  static from(value: unknown, code: SottoErrorCode, message: string): SottoError {
    return value instanceof SottoError ? value : new SottoError(code, message, { cause: value });
  }
}

/** What a full disk or storage quota is called by browsers (`QuotaExceededError`), SQLite and the system. */
const FULL_NAMES = new Set(['QuotaExceededError', 'SQLITE_FULL', 'ENOSPC', 'EDQUOT']);

/**
 * Whether `err`, or an error it was caused by, says this device's storage is full: IndexedDB's
 * quota, SQLite's `SQLITE_FULL`, the system's `ENOSPC`.
 * @example
 * client.events.on('receiveFailed', (e) => { if (e.storageFull) warn('free some space'); });
 */
export function isStorageFull(err: unknown): boolean {
  let e = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { name, code } = e as { name?: unknown; code?: unknown };
    if ((typeof name === 'string' && FULL_NAMES.has(name)) || (typeof code === 'string' && FULL_NAMES.has(code))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
