/** Bounds of the agent's memory of recent calls by operation id. */
export interface IdempotencyOptions {
  /** Most calls remembered (default 10,000); the oldest finished ones are forgotten first. */
  readonly maxEntries?: number;
  /** How long a finished call is remembered, in ms (default 10 min). */
  readonly ttlMs?: number;
}

interface Entry<T> {
  readonly promise: Promise<T>;
  settledAt: number | undefined;
}

/**
 * Recent calls by key: the first call with a key runs, a call with the same key while it runs
 * joins it, and one after it finished gets its outcome, until the entry is evicted (bounded by
 * `maxEntries` finished entries and `ttlMs`). Calls still running are never evicted.
 */
export class IdempotencyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;

  constructor(
    options: IdempotencyOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
  }

  /** Number of remembered calls (running or finished). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The outcome of the call with `key`: `run()`'s, or a remembered one's. `remember(outcome)`
   * decides whether a finished call is kept (e.g. not a retryable failure); rejections of `run()`
   * are not kept.
   */
  run(key: string, run: () => Promise<T>, remember: (outcome: T) => boolean = () => true): Promise<T> {
    this.evict();
    const hit = this.entries.get(key);
    if (hit) return hit.promise;
    const entry: Entry<T> = { promise: run(), settledAt: undefined };
    this.entries.set(key, entry);
    entry.promise.then(
      (outcome) => {
        if (remember(outcome)) entry.settledAt = this.now();
        else if (this.entries.get(key) === entry) this.entries.delete(key);
        this.evict();
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.promise;
  }

  private evict(): void {
    const expired = this.now() - this.ttlMs;
    let excess = this.entries.size - this.maxEntries;
    for (const [key, e] of this.entries) {
      if (e.settledAt === undefined) continue;
      if (excess > 0 || e.settledAt <= expired) {
        this.entries.delete(key);
        excess--;
      } else {
        // Insertion order approximates finishing order: stop at the first finished entry that is
        // neither expired nor over the bound. A later one may outlive its TTL a little; the
        // bound holds regardless.
        break;
      }
    }
  }
}
