import type { Claim } from '@nova-lfs/core';
import type { ClaimChange, ClaimChangeFeed, ClaimStore } from '@nova-lfs/core/ports';

/** What a {@link ClaimFeedFollower} keeps up to date: the scheduler's cache of claims. */
export interface ClaimCache {
  /** Replaces every claim known with a snapshot of the store. */
  replaceClaims(claims: readonly Claim[]): void;
  /**
   * Applies one change (idempotently: a change may be delivered again after a snapshot); true
   * when another process made it (not a claim or release of this cache's own).
   */
  applyChange(change: ClaimChange): boolean;
}

/** The store's change feed, when it is shared with other processes (else nothing to follow). */
export function sharedFeedOf(store: ClaimStore | undefined): ClaimChangeFeed | undefined {
  const feed = store as Partial<ClaimChangeFeed> | undefined;
  if (
    feed?.shared === true &&
    typeof feed.claimChanges === 'function' &&
    typeof feed.claimSnapshot === 'function'
  ) {
    return feed as ClaimChangeFeed;
  }
  return undefined;
}

/**
 * Follows a shared claim store's change feed into the scheduler's cache: other processes' claims
 * and releases are learned incrementally (a read of what changed since the last cursor), with a
 * full snapshot only at the start, after the feed was pruned past the cursor, or when asked.
 * Concurrent callers share one read. While the feed shows only this process's own changes
 * (`quiet`: no other process is placing), a caller may read in the background instead of
 * waiting: whatever it misses is caught when a claim conflicts or before a NoValidHost.
 */
export class ClaimFeedFollower {
  private cursor: string | undefined;
  private snapshotWanted = true;
  private readsStarted = 0;
  private current: { readonly n: number; readonly done: Promise<void> } | undefined;
  private quietReads = 0;
  /** Reads and the changes they applied (observability, tests). */
  readonly stats = { reads: 0, snapshots: 0, changes: 0 };

  constructor(
    private readonly feed: ClaimChangeFeed,
    private readonly cache: ClaimCache,
  ) {}

  /** Applies what changed since the last read; joins a read already under way. */
  catchUp(): Promise<void> {
    return this.current?.done ?? this.start();
  }

  /** The last read showed no other process's change (and was not a snapshot). */
  get quiet(): boolean {
    return this.quietReads > 0;
  }

  /** Starts a read unless one is under way, without waiting for it (its failure is dropped). */
  catchUpInBackground(): void {
    if (!this.current) this.start().catch(() => undefined);
  }

  /**
   * Reloads every claim with a read that starts after this call (not one already under way), so
   * that the cache holds at least everything committed before it was called.
   */
  async resync(): Promise<void> {
    const after = this.readsStarted;
    this.snapshotWanted = true;
    for (;;) {
      const current = this.current;
      if (!current) return this.start();
      await current.done;
      if (current.n > after && !this.snapshotWanted) return;
    }
  }

  /** A host appeared: the changes skipped while it was unknown are only in a snapshot. */
  wantSnapshot(): void {
    this.snapshotWanted = true;
  }

  private start(): Promise<void> {
    const n = ++this.readsStarted;
    const done = this.read().finally(() => {
      if (this.current?.n === n) this.current = undefined;
    });
    this.current = { n, done };
    return done;
  }

  private async read(): Promise<void> {
    this.stats.reads++;
    if (!this.snapshotWanted && this.cursor !== undefined) {
      const page = await this.feed.claimChanges(this.cursor);
      if (page) {
        let foreign = false;
        for (const change of page.changes) foreign = this.cache.applyChange(change) || foreign;
        this.quietReads = foreign ? 0 : this.quietReads + 1;
        this.stats.changes += page.changes.length;
        this.cursor = page.cursor;
        return;
      }
    }
    this.quietReads = 0;
    this.snapshotWanted = false;
    this.stats.snapshots++;
    try {
      const snapshot = await this.feed.claimSnapshot();
      this.cache.replaceClaims(snapshot.claims);
      this.cursor = snapshot.cursor;
    } catch (e) {
      this.snapshotWanted = true;
      throw e;
    }
  }
}
