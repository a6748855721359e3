import { readFileSync } from 'node:fs';
import { CONTENT_TYPES, fromHex, toHex } from '@sotto/protocol';
import { describe, expect, it } from 'vitest';
import { codecs, encodeAny } from './codecs.js';
import { reviveBytes } from './vector-json.js';

interface Vector {
  name: string;
  format: string;
  value: unknown;
  hex: string;
}
const file = JSON.parse(readFileSync(new URL('../../test-vectors/formats.json', import.meta.url), 'utf8')) as { vectors: Vector[] };

describe('committed wire-format test vectors', () => {
  it('cover every format and every content type', () => {
    const formats = new Set(file.vectors.map((v) => v.format));
    expect([...formats].sort()).toEqual(Object.keys(codecs).sort());
    const types = new Set(file.vectors.filter((v) => v.format === 'Content').map((v) => (v.value as { type: string }).type));
    expect([...types].sort()).toEqual([...CONTENT_TYPES].sort());
  });

  for (const vector of file.vectors) {
    it(`${vector.name}: encodes to the committed hex and decodes back`, () => {
      const value = reviveBytes(vector.value);
      expect(toHex(encodeAny(vector.format, value))).toBe(vector.hex);
      expect(codecs[vector.format]!.decode(fromHex(vector.hex))).toStrictEqual(value);
    });
  }
});
