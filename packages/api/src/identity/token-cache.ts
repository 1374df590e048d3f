import { createHash } from 'node:crypto';

/** What the cache needs to know of a validated token. */
export interface CachedToken {
  readonly userId: string;
  readonly auditIds: readonly string[];
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** Options of {@link TokenCache}. */
export interface TokenCacheOptions {
  /** How long a validation is reused, in ms (default 5,000; 0 turns the cache off). */
  readonly ttlMs?: number;
  /** Most entries (default 10,000); the oldest go first. */
  readonly max?: number;
  readonly clock: () => number;
}

/**
 * Validated tokens remembered for a short time, bounded in size, keyed by a SHA-256 of the token
 * (the cache holds no bearer token). Revocations in this process drop the entries they concern at
 * once; a write that races a validation is caught by the generation counter: a validation that
 * started before a drop does not store its (possibly stale) answer.
 */
export class TokenCache<V extends CachedToken> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private readonly ttl: number;
  private readonly max: number;
  private readonly clock: () => number;
  private gen = 0;

  constructor(options: TokenCacheOptions) {
    this.ttl = options.ttlMs ?? 5_000;
    this.max = Math.max(1, options.max ?? 10_000);
    this.clock = options.clock;
  }

  /** Changes whenever entries are dropped; pass it back to {@link set}. */
  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.entries.size;
  }

  get(token: string): V | undefined {
    const key = keyOf(token);
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    const now = this.clock();
    if (hit.until <= now || hit.value.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  /** Remembers a validation, unless entries were dropped since `generation` was read. */
  set(token: string, value: V, generation: number): void {
    if (this.ttl <= 0 || generation !== this.gen) return;
    const key = keyOf(token);
    this.entries.delete(key);
    while (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until: Math.min(this.clock() + this.ttl, value.expiresAt) });
  }

  /** Drops every entry of the user. */
  dropUser(userId: string): void {
    this.gen++;
    for (const [k, e] of this.entries) if (e.value.userId === userId) this.entries.delete(k);
  }

  /** Drops every entry carrying the audit id. */
  dropAudit(auditId: string): void {
    this.gen++;
    for (const [k, e] of this.entries) if (e.value.auditIds.includes(auditId)) this.entries.delete(k);
  }

  /** Drops everything (roles, projects or memberships changed). */
  clear(): void {
    this.gen++;
    this.entries.clear();
  }
}

function keyOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
