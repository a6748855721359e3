/**
 * Token-bucket rate limiting, keyed by any string (account id, IP, `bundle:<account>`).
 *
 * Each key owns a bucket of `capacity` tokens refilled continuously at `refillPerSecond`.
 * `take(key, cost)` spends tokens or says how long until enough are back (for `Retry-After`).
 * Memory is bounded: at most `maxKeys` buckets are kept; the least recently used bucket is
 * evicted first. An evicted key starts again with a full bucket, so `maxKeys` must comfortably
 * exceed the number of keys active within one refill period (the default 100,000 buckets cost a
 * few MiB).
 *
 * The clock is injected (`now`, milliseconds) so tests are deterministic.
 *
 * @example
 * const perIp = new RateLimiter({ capacity: 60, refillPerSecond: 1 });
 * const verdict = perIp.take(request.ip);
 * if (!verdict.ok) return tooManyRequests(Math.ceil(verdict.retryAfterMs / 1000));
 */

export interface RateLimiterOptions {
  /** Bucket size: the largest burst allowed. Positive. */
  capacity: number;
  /** Tokens added per second. Positive. */
  refillPerSecond: number;
  /** Upper bound on tracked keys (least recently used evicted first). Default 100,000. */
  maxKeys?: number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
}

export type RateLimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const OK: RateLimitVerdict = Object.freeze({ ok: true });

export class RateLimiter {
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly maxKeys: number;
  private readonly now: () => number;
  /** Insertion order doubles as recency order: a touched key is re-inserted at the end. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    const { capacity, refillPerSecond, maxKeys = 100_000, now = Date.now } = options;
    if (!(Number.isFinite(capacity) && capacity > 0)) throw new RangeError('capacity must be a positive number');
    if (!(Number.isFinite(refillPerSecond) && refillPerSecond > 0)) {
      throw new RangeError('refillPerSecond must be a positive number');
    }
    if (!(Number.isSafeInteger(maxKeys) && maxKeys > 0)) throw new RangeError('maxKeys must be a positive integer');
    this.capacity = capacity;
    this.refillPerSecond = refillPerSecond;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  /**
   * Spends `cost` tokens from `key`'s bucket if it has them.
   * A refused take spends nothing. `cost` above `capacity` can never succeed and throws RangeError
   * (a programming error, not a client one).
   *
   * @example
   * const r = limiter.take(`account:${accountId}`, envelopeCount);
   * if (!r.ok) throw new RelayHttpError(429, r.retryAfterMs);
   */
  take(key: string, cost = 1): RateLimitVerdict {
    if (!(Number.isFinite(cost) && cost >= 0 && cost <= this.capacity)) {
      throw new RangeError(`cost must be between 0 and capacity (${this.capacity})`);
    }
    const now = this.now();
    const bucket = this.refill(key, now);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return OK;
    }
    const missing = cost - bucket.tokens;
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil((missing / this.refillPerSecond) * 1000)) };
  }

  /** Number of buckets currently tracked (never above `maxKeys`). */
  get size(): number {
    return this.buckets.size;
  }

  /** Forgets every bucket. */
  clear(): void {
    this.buckets.clear();
  }

  private refill(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.capacity, updatedAt: now };
    } else {
      // A clock that goes backwards must not mint tokens.
      const elapsedMs = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(this.capacity, bucket.tokens + (elapsedMs / 1000) * this.refillPerSecond);
      bucket.updatedAt = Math.max(bucket.updatedAt, now);
      this.buckets.delete(key);
    }
    this.buckets.set(key, bucket);
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done === true) break;
      this.buckets.delete(oldest.value);
    }
    return bucket;
  }
}
