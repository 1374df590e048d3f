import { DuplicateError } from '../errors.js';
import type { Claim } from '../model/claim.js';
import type { ClaimStore } from '../ports/stores.js';

/** In-memory {@link ClaimStore}, indexed by instance for fast release on delete. */
export class MemoryClaimStore implements ClaimStore {
  private readonly records = new Map<string, Claim>();
  private readonly byInstance = new Map<string, Claim[]>();

  async add(claim: Claim): Promise<void> {
    if (this.records.has(claim.id)) throw new DuplicateError('claim', claim.id);
    this.records.set(claim.id, claim);
    const list = this.byInstance.get(claim.instanceId);
    if (list) list.push(claim);
    else this.byInstance.set(claim.instanceId, [claim]);
  }

  async remove(claimId: string): Promise<void> {
    const claim = this.records.get(claimId);
    if (!claim) return;
    this.records.delete(claimId);
    const list = this.byInstance.get(claim.instanceId);
    if (!list) return;
    const rest = list.filter((c) => c.id !== claimId);
    if (rest.length) this.byInstance.set(claim.instanceId, rest);
    else this.byInstance.delete(claim.instanceId);
  }

  async list(filter: { hostId?: string; instanceId?: string } = {}): Promise<Claim[]> {
    const source =
      filter.instanceId !== undefined
        ? (this.byInstance.get(filter.instanceId) ?? [])
        : this.records.values();
    const out: Claim[] = [];
    for (const c of source) {
      if (filter.hostId !== undefined && c.hostId !== filter.hostId) continue;
      out.push(c);
    }
    return out;
  }

  /** Number of claims held (for tests and benchmarks). */
  get size(): number {
    return this.records.size;
  }
}
