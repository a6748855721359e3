/**
 * Converts whatever libsignal-client (or a store adapter) threw into a {@link ProtocolError}.
 * Store errors win: when an adapter failed first, its error (usually already typed, e.g.
 * `INVALID_PREKEY`) is what libsignal was reporting.
 */
import * as S from '@signalapp/libsignal-client';
import { ProtocolError } from '../errors.js';
import type { OperationContext } from './store-adapters.js';

/** What the failing call was doing; decides what a generic libsignal error means. */
export type OperationKind = 'decrypt' | 'groupDecrypt' | 'encrypt' | 'groupEncrypt' | 'other';

export function toProtocolError(e: unknown, ctx: OperationContext, kind: OperationKind, address?: string): ProtocolError {
  if (e instanceof ProtocolError) return e;
  if (ctx.storeError !== undefined) {
    return ctx.storeError instanceof ProtocolError
      ? ctx.storeError
      : new ProtocolError('INTERNAL', 'protocol store failed', { cause: ctx.storeError });
  }
  const opts = { cause: e, ...(address === undefined ? {} : { address }) };
  if (e instanceof S.LibSignalErrorBase) {
    switch (e.code) {
      case S.ErrorCode.DuplicatedMessage:
        return new ProtocolError('DUPLICATE_MESSAGE', 'message already decrypted', opts);
      case S.ErrorCode.UntrustedIdentity:
        return new ProtocolError('UNTRUSTED_IDENTITY', 'identity key differs from the trusted one', opts);
      case S.ErrorCode.InvalidSession:
        return kind === 'encrypt'
          ? new ProtocolError('NO_SESSION', 'no usable session', opts)
          : new ProtocolError('INVALID_MESSAGE', 'message does not match any session', opts);
      case S.ErrorCode.InvalidSenderKeySession:
        return new ProtocolError('NO_SENDER_KEY', 'no sender key for this distribution', opts);
      case S.ErrorCode.VerificationFailed:
        return kind === 'other'
          ? new ProtocolError('BAD_SIGNATURE', 'signature verification failed', opts)
          : new ProtocolError('INVALID_MESSAGE', 'message failed verification', opts);
      default:
        break;
    }
  }
  if (kind === 'decrypt' || kind === 'groupDecrypt') {
    return new ProtocolError('INVALID_MESSAGE', 'message could not be decrypted', opts);
  }
  return new ProtocolError('INTERNAL', 'libsignal operation failed', opts);
}
