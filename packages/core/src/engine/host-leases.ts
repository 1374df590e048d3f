import type { LeaseStore } from '../ports/unit-of-work.js';

/**
 * The hosts this engine process owns, through leases in the store: it reconciles (power sync,
 * orphans, stale tasks of its own hosts) only what it owns, so two live processes never heal one
 * host. Leases are renewed every third of their time to live; a dead process's leases expire and
 * another process takes them at its next renewal.
 */
export class HostLeases {
  private readonly wanted = new Set<string>();
  private readonly owned = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly store: LeaseStore,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Asks for the host's lease now and at every renewal. Resolves whether it is owned now. */
  async want(hostId: string): Promise<boolean> {
    this.wanted.add(hostId);
    return this.acquire(hostId);
  }

  /** Gives the host's lease up. */
  async drop(hostId: string): Promise<void> {
    this.wanted.delete(hostId);
    this.owned.delete(hostId);
    await this.store.release(leaseName(hostId), this.owner);
  }

  /** Whether this process holds the host's lease (as of the last renewal). */
  owns(hostId: string): boolean {
    return this.owned.has(hostId);
  }

  /** Renews every wanted lease (and takes expired ones). */
  async renew(): Promise<void> {
    for (const hostId of this.wanted) await this.acquire(hostId).catch(() => false);
  }

  /** Starts renewing in the background. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref?.();
  }

  /** Stops renewing and gives every lease up. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const hostId of [...this.wanted]) await this.drop(hostId).catch(() => undefined);
  }

  private async acquire(hostId: string): Promise<boolean> {
    const lease = await this.store.acquire(leaseName(hostId), this.owner, this.ttlMs, this.now());
    const mine = lease.owner === this.owner;
    if (mine) this.owned.add(hostId);
    else this.owned.delete(hostId);
    return mine;
  }
}

function leaseName(hostId: string): string {
  return `host:${hostId}`;
}
