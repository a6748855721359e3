import { describe, expect, it } from 'vitest';
import { newMessageId } from '../../src/ids.js';

describe('message ids', () => {
  it('are 22 base64url characters and never repeat across pool refills', () => {
    const ids = Array.from({ length: 1_000 }, () => newMessageId());
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sort by their time as strings (byte order, as SQLite compares them)', () => {
    const times = [0, 1, 63, 64, 4_095, 1_700_000_000_000, 1_700_000_000_001, 1_764_500_000_000, 2 ** 48 - 1];
    const ids = times.map((t) => newMessageId(t));
    const sorted = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(sorted).toEqual(ids);
    // the random part decides only within one millisecond
    expect(newMessageId(5).slice(0, 8)).toBe(newMessageId(5).slice(0, 8));
    expect(newMessageId(5).slice(8)).not.toBe(newMessageId(5).slice(8));
  });
});
