import type { Claim } from '@nova-lfs/core';
import type { ClaimGroup, GroupMemberClaim } from '@nova-lfs/core/ports';

/** The server group a claim was made for, if any (see core's `GroupMemberClaim`). */
export function claimGroupOf(claim: Claim): ClaimGroup | undefined {
  return (claim as Partial<GroupMemberClaim>).group;
}

/**
 * The claims the scheduler knows of, per server group: the hosts a group's members hold claims
 * on, whichever request or process placed them. Hard policies are checked against it when a
 * claim is made (alternates on reschedule included), so a request's siblings and members placed
 * since the engine resolved the group are never missed.
 */
export class GroupClaims {
  private readonly byGroup = new Map<string, Map<string, Claim>>();

  /** Records a claim (ignored unless it was made for a group member). */
  add(claim: Claim): void {
    const group = claimGroupOf(claim);
    if (!group) return;
    let claims = this.byGroup.get(group.id);
    if (!claims) {
      claims = new Map();
      this.byGroup.set(group.id, claims);
    }
    claims.set(claim.id, claim);
  }

  /** Forgets a claim. */
  remove(claim: Claim): void {
    const group = claimGroupOf(claim);
    if (!group) return;
    const claims = this.byGroup.get(group.id);
    if (!claims?.delete(claim.id)) return;
    if (claims.size === 0) this.byGroup.delete(group.id);
  }

  clear(): void {
    this.byGroup.clear();
  }

  /**
   * Members' claims per host for a group, leaving out the claims of `exceptInstances` (the
   * instances being placed: an instance never conflicts with itself).
   */
  hostCounts(groupId: string, exceptInstances: readonly string[]): Map<string, number> | undefined {
    const claims = this.byGroup.get(groupId);
    if (!claims) return undefined;
    const counts = new Map<string, number>();
    for (const c of claims.values()) {
      if (exceptInstances.includes(c.instanceId)) continue;
      counts.set(c.hostId, (counts.get(c.hostId) ?? 0) + 1);
    }
    return counts;
  }
}
