/** Options of {@link RateLimiter}. */
export interface RateLimitOptions {
  /** Sustained requests per second per caller. */
  readonly perSecond: number;
  /** Requests a caller may make at once after being idle (bucket size). Default `2 * perSecond`. */
  readonly burst?: number;
  /** Most callers tracked at once; the least recently seen are forgotten first. Default 100,000. */
  readonly maxCallers?: number;
  readonly clock?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per caller (user id, or client address before authentication). Memory is bounded:
 * at most `maxCallers` buckets, the oldest dropped first (a dropped caller starts full again,
 * which only ever favours a caller that has been quiet).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly maxCallers: number;
  private readonly clock: () => number;

  constructor(private readonly options: RateLimitOptions) {
    if (!(options.perSecond > 0)) throw new RangeError('rate limit perSecond must be a positive number');
    this.burst = options.burst ?? options.perSecond * 2;
    if (!(this.burst >= 1)) throw new RangeError('rate limit burst must be at least 1');
    this.maxCallers = options.maxCallers ?? 100_000;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Takes one request from the caller's bucket.
   * @returns 0 when allowed, otherwise the whole seconds to wait (for `Retry-After`)
   */
  take(caller: string): number {
    const now = this.clock();
    let bucket = this.buckets.get(caller);
    if (bucket) {
      this.buckets.delete(caller); // re-insert: the map's order is the recency order
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + ((now - bucket.at) / 1000) * this.options.perSecond,
      );
      bucket.at = now;
    } else {
      bucket = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxCallers) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(caller, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.perSecond));
  }

  /** Callers tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}
