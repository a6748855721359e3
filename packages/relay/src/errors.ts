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

/** Convert anything thrown into a client-safe error body (unknown errors become INTERNAL). */
export function toErrorBody(err: unknown): { status: number; body: RelayErrorBody } {
  if (err instanceof RelayError) return { status: err.status, body: err.toBody() };
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error' } };
}
