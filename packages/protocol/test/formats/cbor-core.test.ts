import { ProtocolError, decodeCbor, encodeCbor, encodeCborLocal, toHex } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { expectCode } from './expect-error.js';

describe('codec/cbor.ts', () => {
  it('round-trips a plain map with the key order it was given', () => {
    const bytes = encodeCbor({ v: 1, b: Uint8Array.of(1, 2), s: 'é' });
    expect(toHex(bytes)).toBe('a36176016162420102617362c3a9');
    expect(decodeCbor(bytes)).toEqual({ v: 1, b: Uint8Array.of(1, 2), s: 'é' });
  });

  it('encodes local bytes with 16-bit map counts, which decode to the same value', () => {
    const value = { v: 1, m: { a: [Uint8Array.of(9)], n: null }, s: 'é' };
    const bytes = encodeCborLocal(value);
    expect(toHex(bytes)).toBe('b90003617601616db90002616181410961' + '6ef6617362c3a9'); // b9 00 03: a map of 3
    expect(decodeCbor(bytes)).toEqual(value);
    const wide = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i]));
    expect(decodeCbor(encodeCborLocal(wide), { maxItems: 200_000, maxBytes: 1 << 20 })).toEqual(wide);
  });

  it('rejects tags', () => {
    expectCode(() => decodeCbor(Uint8Array.of(0xc1, 0x00)), 'MALFORMED'); // epoch time tag
    expectCode(() => decodeCbor(Uint8Array.of(0xa1, 0x61, 0x76, 0xd8, 0x40, 0x41, 0x00)), 'MALFORMED'); // typed array tag
  });

  it('rejects indefinite lengths', () => {
    expectCode(() => decodeCbor(Uint8Array.of(0x9f, 0x01, 0xff)), 'MALFORMED');
    expectCode(() => decodeCbor(Uint8Array.of(0xbf, 0x61, 0x76, 0x01, 0xff)), 'MALFORMED');
    expectCode(() => decodeCbor(Uint8Array.of(0x5f, 0x41, 0x00, 0xff)), 'MALFORMED');
  });

  it('rejects trailing bytes and truncation', () => {
    expectCode(() => decodeCbor(Uint8Array.of(0x01, 0x02)), 'MALFORMED');
    expectCode(() => decodeCbor(Uint8Array.of(0x82, 0x01)), 'MALFORMED');
    expectCode(() => decodeCbor(new Uint8Array(0)), 'MALFORMED');
  });

  it('applies per-call limits', () => {
    expectCode(() => decodeCbor(Uint8Array.of(0x81, 0x81, 0x00), { maxDepth: 1 }), 'TOO_DEEP');
    expectCode(() => decodeCbor(Uint8Array.of(0x43, 1, 2, 3), { maxStringBytes: 2 }), 'TOO_LARGE');
    expectCode(() => decodeCbor(Uint8Array.of(0x83, 1, 2, 3), { maxItems: 3 }), 'TOO_LARGE');
    expect(decodeCbor(Uint8Array.of(0x83, 1, 2, 3), { maxItems: 4 })).toEqual([1, 2, 3]);
    expect(ProtocolError.is(new ProtocolError('MALFORMED', 'x'), 'MALFORMED')).toBe(true);
  });

  it('applies a limits object as it is at each call (frozen ones are merged once)', () => {
    const frozen = Object.freeze({ maxItems: 3 });
    for (let i = 0; i < 2; i++) expectCode(() => decodeCbor(Uint8Array.of(0x83, 1, 2, 3), frozen), 'TOO_LARGE');
    const changing: { maxItems: number } = { maxItems: 3 };
    expectCode(() => decodeCbor(Uint8Array.of(0x83, 1, 2, 3), changing), 'TOO_LARGE');
    changing.maxItems = 4;
    expect(decodeCbor(Uint8Array.of(0x83, 1, 2, 3), changing)).toEqual([1, 2, 3]);
  });
});
