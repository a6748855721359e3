/**
 * Every failure in `@sotto/protocol` is a {@link ProtocolError} with a stable string `code`.
 * Callers branch on `code` (or the static {@link ProtocolError.is}), never on message text.
 */
export type ProtocolErrorCode =
  /** Input larger than the format allows (bytes, string length, array count). */
  | 'TOO_LARGE'
  /** Nesting deeper than the format allows. */
  | 'TOO_DEEP'
  /** Not well-formed CBOR, or a CBOR feature Sotto does not accept (tags, indefinite lengths). */
  | 'MALFORMED'
  /** Version field missing or not one this build understands. */
  | 'UNKNOWN_VERSION'
  /** Well-formed CBOR whose fields do not match the format (missing, wrong type, wrong length). */
  | 'INVALID_FIELD'
  /** A signature did not verify. */
  | 'BAD_SIGNATURE'
  /** A public key is malformed (wrong length or key-type byte). */
  | 'BAD_KEY'
  /** A remote identity key differs from the trusted one. Carries `address`. */
  | 'UNTRUSTED_IDENTITY'
  /** A message was already decrypted (replay or duplicate delivery). */
  | 'DUPLICATE_MESSAGE'
  /** A message failed authentication or could not be decrypted. */
  | 'INVALID_MESSAGE'
  /** No session exists with the remote device. */
  | 'NO_SESSION'
  /** A prekey referenced by a message or bundle is unknown. */
  | 'INVALID_PREKEY'
  /** No sender key state for a group message. */
  | 'NO_SENDER_KEY'
  /** An attachment stream failed a check (digest, size, truncation, key). */
  | 'ATTACHMENT_INVALID'
  /** Anything else raised inside an engine; `cause` holds the original. */
  | 'INTERNAL';

export interface ProtocolErrorOptions {
  cause?: unknown;
  /** `accountId.deviceId` of the remote device, when the error is about one. */
  address?: string;
  /** The field or path the error is about (never its value). */
  field?: string;
}

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly address?: string;
  readonly field?: string;

  constructor(code: ProtocolErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.address !== undefined) this.address = options.address;
    if (options.field !== undefined) this.field = options.field;
  }

  /**
   * Narrow an unknown value to a ProtocolError, optionally of one code.
   * @example
   * if (ProtocolError.is(err, 'UNTRUSTED_IDENTITY')) showSafetyNumberChange(err.address);
   */
  static is<C extends ProtocolErrorCode>(
    value: unknown,
    code?: C,
  ): value is ProtocolError & { code: C } {
    return value instanceof ProtocolError && (code === undefined || value.code === code);
  }
}
