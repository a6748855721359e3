import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { fromHex } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { codecs } from './codecs.js';
import { decodeOrProtocolError, expectCode, protocolError } from './expect-error.js';

const vectors = (
  JSON.parse(readFileSync(new URL('../../test-vectors/formats.json', import.meta.url), 'utf8')) as {
    vectors: { name: string; format: string; hex: string }[];
  }
).vectors.map((v) => ({ ...v, bytes: fromHex(v.hex) }));

/** A valid encoding changed by one hostile edit. */
const mutated = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), extra: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
);
function apply(bytes: Uint8Array, m: { kind: string; at?: number; xor?: number; extra?: Uint8Array }): Uint8Array {
  const at = (m.at ?? 0) % bytes.length;
  switch (m.kind) {
    case 'flip': {
      const out = bytes.slice();
      out[at]! ^= m.xor!;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, at);
    case 'append':
      return Uint8Array.from([...bytes, ...m.extra!]);
    default:
      return Uint8Array.from([...bytes.subarray(0, at), ...m.extra!, ...bytes.subarray(at)]);
  }
}

describe('hostile input gives only ProtocolError', () => {
  for (const [format, codec] of Object.entries(codecs)) {
    it(`${format}: arbitrary bytes`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => decodeOrProtocolError(codec.decode, bytes)),
        { numRuns: 150 },
      );
    });
    it(`${format}: arbitrary CBOR-ish maps`, () => {
      // Starts with a map header so more inputs get past the first byte.
      fc.assert(
        fc.property(fc.integer({ min: 0xa0, max: 0xbb }), fc.uint8Array({ maxLength: 512 }), (h, rest) =>
          decodeOrProtocolError(codec.decode, Uint8Array.of(h, 0x61, 0x76, 0x01, ...rest)),
        ),
        { numRuns: 150 },
      );
    });
  }

  it('mutated valid encodings (flipped, truncated, appended, inserted bytes)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...vectors), mutated, (v, m) => {
        decodeOrProtocolError(codecs[v.format]!.decode, apply(v.bytes, m));
      }),
      { numRuns: 1500 },
    );
  });

  it('truncation and trailing bytes of every vector are rejected', () => {
    for (const v of vectors) {
      expectCode(() => codecs[v.format]!.decode(v.bytes.subarray(0, v.bytes.length - 1)), 'MALFORMED');
      expectCode(() => codecs[v.format]!.decode(Uint8Array.from([...v.bytes, 0x00])), 'MALFORMED');
    }
  });

  it('300 KiB input is TOO_LARGE for every format', () => {
    const big = new Uint8Array(300 * 1024);
    big.set([0xa1, 0x61, 0x76, 0x01]);
    for (const codec of Object.values(codecs)) expectCode(() => codec.decode(big), 'TOO_LARGE');
  });

  it('10,000 nested arrays or maps are TOO_DEEP without exhausting stack or memory', () => {
    const arrays = new Uint8Array(10_001).fill(0x81);
    arrays[10_000] = 0x00;
    const maps = new Uint8Array(20_001);
    for (let i = 0; i < 10_000; i++) maps.set([0xa1, 0x60], i * 2); // { "": { "": ... } }
    maps[20_000] = 0x00;
    for (const [format, codec] of Object.entries(codecs)) {
      // Small formats hit their byte limit first; the large ones must reach the depth check.
      const large = format === 'Envelope' || format === 'Content';
      for (const input of [arrays, maps]) {
        const code = protocolError(() => codec.decode(input)).code;
        expect(large ? [code] : ['TOO_DEEP', 'TOO_LARGE']).toContain(large ? 'TOO_DEEP' : code);
      }
      // Nesting 16 deep fits every byte limit and exceeds every depth limit.
      const shallow = Uint8Array.of(0xa1, 0x61, 0x76, ...new Uint8Array(15).fill(0x81), 0x00);
      expectCode(() => codec.decode(shallow), 'TOO_DEEP');
    }
  });

  it('a huge declared length is rejected before allocation', () => {
    // map { "v": 1, "x": bytes of declared length 2^32-1 }
    const bytes = Uint8Array.of(0xa2, 0x61, 0x76, 0x01, 0x61, 0x78, 0x5a, 0xff, 0xff, 0xff, 0xff);
    for (const codec of Object.values(codecs)) expect(() => codec.decode(bytes)).toThrow(/exceeds/);
  });
});
