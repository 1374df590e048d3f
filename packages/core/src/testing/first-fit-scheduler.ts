import { randomUUID } from 'node:crypto';
import { NoValidHostError } from '../errors.js';
import type { Claim } from '../model/claim.js';
import { flavorResources } from '../model/flavor.js';
import type { Host } from '../model/host.js';
import { capacityOf } from '../model/resources.js';
import type { GroupMemberClaim, PlacementRequest, Scheduler, Selection } from '../ports/scheduler.js';
import type { ClaimStore } from '../ports/stores.js';

interface HostState {
  host: Host;
  used: Record<string, number>;
}

/** Reasons the first-fit scheduler gives for rejecting a host. */
export const FirstFitReason = {
  Unavailable: 'host disabled or down',
  Zone: 'not in the requested availability zone',
  Resources: 'insufficient resources',
  Excluded: 'excluded',
  Group: 'server group policy',
} as const;

/**
 * A deliberately simple scheduler for tests and examples (not for production: use
 * `@nova-lfs/scheduler`). Takes the first host, in insertion order, that is enabled, up, in the
 * requested zone, honours hard (anti-)affinity and has room; claims synchronously, so concurrent
 * calls never double-book. Claims of group members carry their group (`GroupMemberClaim`), and
 * hard policies count the member claims it holds as well as `memberHostIds` (alternates
 * included).
 */
export class FirstFitScheduler implements Scheduler {
  private readonly states = new Map<string, HostState>();
  private readonly held = new Map<string, Claim>();
  /** Hosts of the member claims held, per group: claim id -> host id. */
  private readonly members = new Map<string, Map<string, string>>();

  constructor(
    private readonly claims?: ClaimStore,
    private readonly alternates = 2,
  ) {}

  upsertHost(host: Host): void {
    const state = this.states.get(host.id);
    if (state) state.host = host;
    else this.states.set(host.id, { host, used: {} });
  }

  removeHost(hostId: string): void {
    this.states.delete(hostId);
    for (const c of this.held.values()) if (c.hostId === hostId) this.forget(c);
  }

  restore(claims: readonly Claim[]): void {
    for (const s of this.states.values()) s.used = {};
    this.held.clear();
    this.members.clear();
    for (const c of claims) {
      const s = this.states.get(c.hostId);
      if (!s) continue;
      this.hold(c);
      add(s.used, c.resources, 1);
    }
  }

  async select(request: PlacementRequest): Promise<Selection[]> {
    const need = flavorResources(request.flavor);
    const rejections: Record<string, number> = {};
    const chosen: Array<{ state: HostState; claim: Claim; alternates: string[] }> = [];
    const inRequest: string[] = [];
    for (const instanceId of request.instanceIds) {
      const fits: HostState[] = [];
      for (const state of this.states.values()) {
        const reason = this.reject(state, request, need, inRequest);
        if (reason) {
          if (chosen.length === 0) rejections[reason] = (rejections[reason] ?? 0) + 1;
          continue;
        }
        fits.push(state);
        if (fits.length > this.alternates) break;
      }
      const first = fits[0];
      if (!first) {
        for (const c of chosen) this.unclaim(c.claim);
        throw new NoValidHostError({
          hostsConsidered: this.states.size,
          rejections: { FirstFit: rejections },
          requested: request.instanceIds.length,
        });
      }
      const claim = this.take(first, instanceId, need, request);
      inRequest.push(first.host.id);
      chosen.push({ state: first, claim, alternates: fits.slice(1).map((s) => s.host.id) });
    }
    if (this.claims) for (const c of chosen) await this.claims.add(c.claim);
    return chosen.map((c) => ({
      instanceId: c.claim.instanceId,
      hostId: c.state.host.id,
      claim: c.claim,
      alternateHostIds: c.alternates,
      availabilityZone: c.state.host.availabilityZone,
    }));
  }

  async claim(hostId: string, request: PlacementRequest): Promise<Claim | undefined> {
    const state = this.states.get(hostId);
    const instanceId = request.instanceIds[0];
    if (!state || !instanceId) return undefined;
    const need = flavorResources(request.flavor);
    if (this.reject(state, request, need, [])) return undefined;
    const claim = this.take(state, instanceId, need, request);
    await this.claims?.add(claim);
    return claim;
  }

  async release(claim: Claim): Promise<void> {
    if (this.held.has(claim.id)) this.unclaim(claim);
    await this.claims?.remove(claim.id);
  }

  /** Resources in use on a host (for assertions). */
  usage(hostId: string): Readonly<Record<string, number>> {
    return { ...(this.states.get(hostId)?.used ?? {}) };
  }

  private reject(
    state: HostState,
    request: PlacementRequest,
    need: Record<string, number>,
    inRequest: readonly string[],
  ): string | undefined {
    const h = state.host;
    if (!h.enabled || !h.up) return FirstFitReason.Unavailable;
    if (request.availabilityZone && h.availabilityZone !== request.availabilityZone)
      return FirstFitReason.Zone;
    if (request.excludedHostIds?.includes(h.id)) return FirstFitReason.Excluded;
    const g = request.group;
    if (g?.policy === 'anti-affinity' || g?.policy === 'affinity') {
      const held = this.memberHosts(g.id, request.instanceIds);
      if (
        g.policy === 'anti-affinity' &&
        (g.memberHostIds.includes(h.id) || inRequest.includes(h.id) || held.includes(h.id))
      ) {
        return FirstFitReason.Group;
      }
      const anchor = g.memberHostIds[0] ?? held[0] ?? inRequest[0];
      if (g.policy === 'affinity' && anchor !== undefined && anchor !== h.id) return FirstFitReason.Group;
    }
    if (request.differentHostIds?.includes(h.id)) return FirstFitReason.Excluded;
    if (request.sameHostIds?.length && !request.sameHostIds.includes(h.id)) return FirstFitReason.Excluded;
    for (const rc in need) {
      const amount = need[rc] ?? 0;
      if (amount === 0) continue;
      const inv = h.inventory[rc];
      if (!inv || (state.used[rc] ?? 0) + amount > capacityOf(inv)) return FirstFitReason.Resources;
    }
    return undefined;
  }

  /** Hosts of the held claims of a group's members other than `except`. */
  private memberHosts(groupId: string, except: readonly string[]): string[] {
    const out: string[] = [];
    for (const [claimId, hostId] of this.members.get(groupId) ?? []) {
      if (!except.includes(this.held.get(claimId)?.instanceId ?? '')) out.push(hostId);
    }
    return out;
  }

  private take(
    state: HostState,
    instanceId: string,
    need: Record<string, number>,
    request: PlacementRequest,
  ): Claim {
    const base: Claim = {
      id: randomUUID(),
      instanceId,
      hostId: state.host.id,
      resources: need,
      createdAt: Date.now(),
    };
    const g = request.group;
    const claim: Claim | GroupMemberClaim = g ? { ...base, group: { id: g.id, policy: g.policy } } : base;
    add(state.used, need, 1);
    this.hold(claim);
    return claim;
  }

  private hold(claim: Claim): void {
    this.held.set(claim.id, claim);
    const group = (claim as Partial<GroupMemberClaim>).group;
    if (!group) return;
    const hosts = this.members.get(group.id) ?? new Map<string, string>();
    this.members.set(group.id, hosts);
    hosts.set(claim.id, claim.hostId);
  }

  private forget(claim: Claim): void {
    this.held.delete(claim.id);
    const group = (claim as Partial<GroupMemberClaim>).group;
    if (group) this.members.get(group.id)?.delete(claim.id);
  }

  private unclaim(claim: Claim): void {
    this.forget(claim);
    const s = this.states.get(claim.hostId);
    if (s) add(s.used, claim.resources, -1);
  }
}

function add(used: Record<string, number>, amounts: Readonly<Record<string, number>>, sign: 1 | -1): void {
  for (const rc in amounts) used[rc] = (used[rc] ?? 0) + sign * (amounts[rc] ?? 0);
}
