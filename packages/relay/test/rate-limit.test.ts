import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RateLimiter } from '../src/rate-limit.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst of capacity, then refuses with a retry hint', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 3, refillPerSecond: 1, now: c.now });
    expect(rl.take('a')).toEqual({ ok: true });
    expect(rl.take('a')).toEqual({ ok: true });
    expect(rl.take('a')).toEqual({ ok: true });
    expect(rl.take('a')).toEqual({ ok: false, retryAfterMs: 1000 });
  });

  it('refills continuously with the clock and never above capacity', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 2, refillPerSecond: 4, now: c.now });
    rl.take('a', 2);
    expect(rl.take('a').ok).toBe(false);
    c.advance(250);
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
    c.advance(60_000);
    expect(rl.take('a', 2).ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
  });

  it('computes retryAfterMs for the missing tokens of a costly take, spending nothing', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 10, refillPerSecond: 2, now: c.now });
    rl.take('a', 9);
    expect(rl.take('a', 5)).toEqual({ ok: false, retryAfterMs: 2000 });
    c.advance(2000);
    expect(rl.take('a', 5)).toEqual({ ok: true });
  });

  it('keeps keys independent', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 1, refillPerSecond: 1, now: c.now });
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
    expect(rl.take('b').ok).toBe(true);
  });

  it('does not mint tokens when the clock goes backwards', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 1, refillPerSecond: 1, now: c.now });
    rl.take('a');
    c.advance(-10_000);
    expect(rl.take('a').ok).toBe(false);
    c.advance(10_000);
    expect(rl.take('a').ok).toBe(false);
    c.advance(1000);
    expect(rl.take('a').ok).toBe(true);
  });

  it('bounds memory by evicting the least recently used key', () => {
    const c = clock();
    const rl = new RateLimiter({ capacity: 1, refillPerSecond: 0.001, maxKeys: 3, now: c.now });
    for (const k of ['a', 'b', 'c']) rl.take(k);
    expect(rl.take('a').ok).toBe(false); // touch a: now b is the oldest
    rl.take('d'); // evicts b
    expect(rl.size).toBe(3);
    expect(rl.take('a').ok).toBe(false); // a still tracked, still empty
    expect(rl.take('c').ok).toBe(false); // c still tracked
    expect(rl.take('b').ok).toBe(true); // b was evicted and starts full
    for (let i = 0; i < 1000; i++) rl.take(`k${i}`);
    expect(rl.size).toBe(3);
  });

  it('rejects invalid options and impossible costs', () => {
    expect(() => new RateLimiter({ capacity: 0, refillPerSecond: 1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ capacity: 1, refillPerSecond: -1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ capacity: 1, refillPerSecond: 1, maxKeys: 0 })).toThrow(RangeError);
    const rl = new RateLimiter({ capacity: 5, refillPerSecond: 1 });
    expect(() => rl.take('a', 6)).toThrow(RangeError);
    expect(() => rl.take('a', Number.NaN)).toThrow(RangeError);
  });

  it('never grants more than capacity + elapsed * rate (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 2000 }), cost: fc.integer({ min: 1, max: 5 }) }), {
          maxLength: 60,
        }),
        (capacity, rate, steps) => {
          const c = clock(0);
          const rl = new RateLimiter({ capacity, refillPerSecond: rate, now: c.now });
          let granted = 0;
          let elapsed = 0;
          for (const { dt, cost } of steps) {
            c.advance(dt);
            elapsed += dt;
            if (cost > capacity) continue;
            const r = rl.take('k', cost);
            if (r.ok) granted += cost;
            else expect(r.retryAfterMs).toBeGreaterThan(0);
          }
          expect(granted).toBeLessThanOrEqual(capacity + (elapsed / 1000) * rate + 1e-9);
        },
      ),
      { numRuns: 100 },
    );
  });
});
