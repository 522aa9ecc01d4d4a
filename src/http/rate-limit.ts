/**
 * Requests per principal: a token bucket each (`burst` requests at once, refilled at `perMinute`),
 * refusing with how long to wait rather than queueing: an HTTP caller retries on 429 itself. Buckets
 * live in this process; several `serve` replicas each allow the rate.
 */

export interface Clock {
  /** Milliseconds, monotonic enough for rate limiting (e.g. `Date.now`). */
  now(): number;
}

export interface RateLimit {
  perMinute: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; the least recently used are dropped first (a full one behaves like new). */
const MAX_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
  ) {}

  /** Takes one request from `key`'s bucket: 0 when allowed, else the seconds until one is. */
  take(key: string): number {
    const now = this.clock.now();
    const perMs = this.limit.perMinute / 60_000;
    const known = this.buckets.get(key);
    const bucket = known
      ? { tokens: Math.min(this.limit.burst, known.tokens + (now - known.at) * perMs), at: now }
      : { tokens: this.limit.burst, at: now };
    this.buckets.delete(key);
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string);
    if (bucket.tokens >= 1) {
      this.buckets.set(key, { ...bucket, tokens: bucket.tokens - 1 });
      return 0;
    }
    this.buckets.set(key, bucket);
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
  }
}
