import { fromHex } from '@sotto/protocol';

/** Revives `"h'0a0b'"` strings (CBOR diagnostic notation for bytes) into Uint8Array, recursively. */
export function reviveBytes(value: unknown): unknown {
  if (typeof value === 'string') {
    const m = /^h'([0-9a-f]*)'$/.exec(value);
    return m ? fromHex(m[1]!) : value;
  }
  if (Array.isArray(value)) return value.map(reviveBytes);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveBytes(v)]));
  }
  return value;
}

/** Rebuilds `value` with ordinary object prototypes (fast-check records have a null prototype). */
export function plain<T>(value: T): T {
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
}
