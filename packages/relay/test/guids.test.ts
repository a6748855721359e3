import { describe, expect, it } from 'vitest';
import { GuidMint } from '../src/guids.js';

describe('envelope guids', () => {
  it('are 32 lowercase hex characters that start with the server timestamp', () => {
    const at = 1_764_460_800_123;
    const guid = new GuidMint(at).next();
    expect(guid).toMatch(/^[0-9a-f]{32}$/);
    expect(parseInt(guid.slice(0, 12), 16)).toBe(at);
  });

  it('never repeat, within an operation or across operations of the same millisecond (the random pool is not reused)', () => {
    const seen = new Set<string>();
    const parts = new Set<string>();
    for (let op = 0; op < 2_000; op++) {
      const mint = new GuidMint(42);
      for (let i = 0; i < 3; i++) seen.add(mint.next());
      parts.add(mint.next().slice(12, 28));
    }
    expect(seen.size).toBe(6_000);
    expect(parts.size).toBe(2_000); // one random part per operation, each fresh: crosses several pool refills
  });

  it('sort by time across operations', () => {
    const a = new GuidMint(1_000).next();
    const b = new GuidMint(1_001).next();
    expect(a < b).toBe(true);
  });
});
