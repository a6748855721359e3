import { describe, expect, it } from 'vitest';
import { newMessageId } from '../../src/ids.js';

describe('message ids', () => {
  it('are 22 base64url characters and never repeat across pool refills', () => {
    const ids = Array.from({ length: 1_000 }, () => newMessageId());
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
