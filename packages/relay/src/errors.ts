import { RELAY_ERROR_STATUS, type RelayErrorBody, type RelayErrorCode } from '@sotto/protocol';

/** The fields an error body carries beyond `code` and `message`. */
export type RelayErrorDetails = Omit<RelayErrorBody, 'code' | 'message'>;

/**
 * Every expected failure inside the relay. Handlers throw it; the HTTP and WebSocket layers turn
 * it into `{ code, message, ...details }` with the status from {@link RELAY_ERROR_STATUS}.
 * Messages never contain request values (usernames, keys, ciphertext).
 *
 * @example
 * throw new RelayError('FORBIDDEN', 'device belongs to another account');
 */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  readonly code: RelayErrorCode;
  readonly details: RelayErrorDetails;

  constructor(code: RelayErrorCode, message: string, details: RelayErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return RELAY_ERROR_STATUS[this.code];
  }

  toBody(): RelayErrorBody {
    return { code: this.code, message: this.message, ...this.details };
  }

  static is<C extends RelayErrorCode>(value: unknown, code?: C): value is RelayError & { code: C } {
    return value instanceof RelayError && (code === undefined || value.code === code);
  }
}

/** How long a client is asked to wait before it retries a write refused for lack of disk space. */
export const STORAGE_FULL_RETRY_MS = 30_000;

/** What a full disk (or quota) is called by the system (errno) and by SQLite, and by our errors. */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', 'STORAGE_FULL']);

/**
 * Whether `err`, or an error it was caused by, says the disk is full: a write to SQLite
 * (`SQLITE_FULL`, which SQLite also reports for a full disk under its WAL) or to a blob file
 * (`ENOSPC`, `EDQUOT`).
 */
export function isStorageFull(err: unknown): boolean {
  let e = err;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && FULL_CODES.has(code)) return true;
    e = e.cause;
  }
  return false;
}

/**
 * Convert anything thrown into a client-safe error body: a full disk becomes STORAGE_FULL (507,
 * retry later: nothing was stored), other unknown errors INTERNAL.
 */
export function toErrorBody(err: unknown): { status: number; body: RelayErrorBody } {
  if (err instanceof RelayError) return { status: err.status, body: err.toBody() };
  if (isStorageFull(err)) {
    return { status: 507, body: { code: 'STORAGE_FULL', message: 'the relay is out of disk space: nothing was stored, try again later', retryAfterMs: STORAGE_FULL_RETRY_MS } };
  }
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error' } };
}
