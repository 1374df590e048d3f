import type { Lease, LeaseStore } from '../ports/unit-of-work.js';

/** In-memory {@link LeaseStore}: leases of the processes that share this object (one process). */
export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, Lease>();

  async acquire(name: string, owner: string, ttlMs: number, now: number): Promise<Lease> {
    const held = this.leases.get(name);
    if (held && held.owner !== owner && held.expiresAt > now) return held;
    const lease = { name, owner, expiresAt: now + ttlMs };
    this.leases.set(name, lease);
    return lease;
  }

  async release(name: string, owner: string): Promise<void> {
    if (this.leases.get(name)?.owner === owner) this.leases.delete(name);
  }

  async list(): Promise<Lease[]> {
    return [...this.leases.values()];
  }
}
