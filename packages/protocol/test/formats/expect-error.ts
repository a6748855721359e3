import { ProtocolError, type ProtocolErrorCode } from '@sotto/protocol';
import { expect } from 'vitest';

/** Runs `fn`; returns the ProtocolError it threw (failing the test on any other throw or none). */
export function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw new Error(`expected a ProtocolError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** Asserts `fn` throws a ProtocolError with `code`. */
export function expectCode(fn: () => unknown, code: ProtocolErrorCode): ProtocolError {
  const error = protocolError(fn);
  expect(error.code, error.message).toBe(code);
  return error;
}

/** Runs a decoder on hostile input: success or ProtocolError are fine, anything else fails. */
export function decodeOrProtocolError(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw new Error(`non-ProtocolError thrown: ${String(e)}`, { cause: e });
  }
}
