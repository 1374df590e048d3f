import {
  type Claim,
  type Clock,
  type Host,
  NoValidHostError,
  newId,
  type PlacementRequest,
  type Selection,
  systemClock,
} from '@nova-lfs/core';
import type { ClaimChange, ClaimStore, GroupMemberClaim, Scheduler } from '@nova-lfs/core/ports';
import { type ClaimCache, ClaimFeedFollower, sharedFeedOf } from './claim-feed-follower.js';
import type { HostVerdict, PlacementExplanation } from './explanation.js';
import { GroupClaims } from './group-claims.js';
import { HostIndex } from './host-index.js';
import { HostState } from './host-state.js';
import { PlacementContext } from './placement-context.js';
import type { FilterPlugin } from './plugin.js';
import { type ResolvedProfile, sampleLimit } from './profile.js';

/** A selection with its explanation when the request asked for one. */
export interface ExplainedSelection extends Selection {
  readonly explanation?: PlacementExplanation;
}

/** Options of {@link PluginScheduler}. */
export interface PluginSchedulerOptions {
  readonly profile: ResolvedProfile;
  /** Where claims are persisted (e.g. core's MemoryClaimStore or a SQL store). */
  readonly claims?: ClaimStore;
  readonly clock?: Clock;
  /** Random source for candidate order (tests pass a seeded one). */
  readonly random?: () => number;
}

interface Pick {
  readonly host: HostState;
  readonly alternates: string[];
}

/**
 * Placements tried again after another process won a claim, each time learning what changed and
 * leaving out the hosts that refused (so at most one try per host); from the third on, by
 * reloading every claim (the feed lags behind transactions still running).
 */
const CONFLICT_RETRIES = 32;
const CONFLICTS_BEFORE_RELOAD = 3;
/** Own released claims remembered while following a shared store's feed (see `released`). */
const MAX_RELEASED_REMEMBERED = 10_000;

/**
 * The scheduler: for each request, routes to cells (by zone), visits candidate hosts from the
 * cell's index, runs the profile's filters until the sampler has enough feasible hosts, scores them
 * (raw scores normalised 0..1 per scorer, weighted, summed), claims the best host and keeps the
 * next best as alternates. A multi-instance request is placed instance by instance in one cell and
 * rolled back entirely if any instance does not fit. Claims are taken synchronously before any
 * await, so concurrent requests never double-book.
 *
 * Claims of server-group members carry their group (`GroupMemberClaim`), and the scheduler keeps
 * them per group: a hard policy is checked against every member claim it knows whenever it
 * claims, alternates included (a SQL claim store checks it again in the claim's transaction).
 *
 * With a claim store shared by several processes (one with a change feed whose `shared` is
 * true), the scheduler reads what changed since its last read before each decision (in the
 * background while only its own changes show), so it knows other processes' claims and releases; when a claim loses a race it learns again and chooses
 * without the host that refused, and before answering NoValidHost it reloads every claim and
 * tries once more, so it never refuses while the store has room.
 */
export class PluginScheduler implements Scheduler, ClaimCache {
  private readonly cells = new Map<string, HostIndex>();
  private readonly states = new Map<string, HostState>();
  /** Every claim counted in the host states: this process's and, on a shared store, the others'. */
  private readonly held = new Map<string, Claim>();
  /**
   * A second claim of an instance on one host (a resize onto its own host holds the old flavor's
   * claim and the new one's there) and the claim it displaced in `HostState.instances`, so that
   * releasing either leaves the instance counted on the host while the other is held.
   */
  private readonly displaced = new Map<string, string>();
  private readonly groups = new GroupClaims();
  /** The shared store's change feed, followed before each decision (undefined: not shared). */
  private readonly follower: ClaimFeedFollower | undefined;
  /**
   * While following a feed: claims this scheduler took whose addition the feed has not shown
   * yet (a snapshot read before they were stored must not drop them), and claims it released
   * whose removal the feed has not shown yet (their addition, read later, must not revive them).
   */
  private readonly unconfirmed = new Set<string>();
  private readonly released = new Set<string>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private lastBuildFailureAt = Number.NEGATIVE_INFINITY;
  private peakInstances = 0;
  private peakInFlight = 0;
  private releasesSinceRecount = 0;

  constructor(private readonly options: PluginSchedulerOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    const feed = sharedFeedOf(options.claims);
    this.follower = feed ? new ClaimFeedFollower(feed, this) : undefined;
  }

  /**
   * On a shared claim store, reads what every process claimed and released since the last read
   * (each decision does so first); resolves at once otherwise.
   */
  async refresh(): Promise<void> {
    await this.follower?.catchUp();
  }

  /** Reads of the shared store's change feed (undefined when the store is not shared). */
  get feedStats():
    | { readonly reads: number; readonly snapshots: number; readonly changes: number }
    | undefined {
    return this.follower?.stats;
  }

  /** The resolved profile in use. */
  get profile(): ResolvedProfile {
    return this.options.profile;
  }

  // ---- hosts ---------------------------------------------------------------------------------

  upsertHost(host: Host): void {
    let state = this.states.get(host.id);
    if (state) {
      const oldCell = state.host.cell;
      if (oldCell !== host.cell) this.cells.get(oldCell)?.remove(state);
      state.update(host);
    } else {
      state = new HostState(host);
      this.states.set(host.id, state);
      // changes of an unknown host's claims were skipped: only a snapshot has them
      this.follower?.wantSnapshot();
    }
    this.cellOf(host.cell).upsert(state);
    this.fleetCache = undefined;
  }

  removeHost(hostId: string): void {
    const state = this.states.get(hostId);
    if (!state) return;
    this.cells.get(state.host.cell)?.remove(state);
    this.states.delete(hostId);
    this.fleetCache = undefined;
    for (const [id, c] of this.held) {
      if (c.hostId !== hostId) continue;
      this.held.delete(id);
      this.groups.remove(c);
    }
  }

  restore(claims: readonly Claim[]): void {
    this.held.clear();
    this.groups.clear();
    for (const s of this.states.values()) s.reset();
    for (const c of claims) this.count(c);
    for (const s of this.states.values()) this.cells.get(s.host.cell)?.reposition(s);
    this.releasesSinceRecount = Number.POSITIVE_INFINITY;
  }

  /**
   * {@link ClaimCache}: a snapshot of the shared store replaces the claims known; builds in
   * flight stay in flight, and this scheduler's claims not stored yet (or released, not yet
   * removed) when the snapshot was read keep their place.
   */
  replaceClaims(claims: readonly Claim[]): void {
    const inFlight = new Set<string>();
    for (const s of this.states.values()) for (const id of s.inFlight) inFlight.add(id);
    const stored = new Set<string>();
    const kept: Claim[] = [];
    for (const c of claims) {
      stored.add(c.id);
      if (!this.released.has(c.id)) kept.push(c);
    }
    for (const id of this.unconfirmed) {
      const own = this.held.get(id);
      if (own && !stored.has(id)) kept.push(own);
      else if (!own) this.unconfirmed.delete(id);
    }
    this.restore(kept);
    for (const c of kept) {
      if (!inFlight.has(c.id)) continue;
      const s = this.states.get(c.hostId);
      s?.inFlight.add(c.id);
      s?.syncCounts();
    }
  }

  /**
   * {@link ClaimCache}: a claim added or removed by any process (this one included); true when
   * another process made the change.
   */
  applyChange(change: ClaimChange): boolean {
    if (change.kind === 'added') {
      const { claim } = change;
      const own = this.unconfirmed.delete(claim.id);
      if (this.released.has(claim.id)) return false; // this process's, released since
      if (this.held.has(claim.id)) return !own;
      const s = this.count(claim);
      if (s) this.cells.get(s.host.cell)?.reposition(s);
      return true;
    }
    const own = this.released.delete(change.claimId);
    this.unconfirmed.delete(change.claimId);
    const known = this.held.get(change.claimId);
    if (known) this.unclaim(known);
    return !own;
  }

  /**
   * Before a decision on a shared store: reads the feed first, unless it showed only this
   * process's own changes last time (then reads in the background: a claim that conflicts, or
   * a NoValidHost, makes the scheduler learn and try again).
   */
  private async learn(): Promise<void> {
    const follower = this.follower;
    if (!follower) return;
    if (follower.quiet) follower.catchUpInBackground();
    else await follower.catchUp();
  }

  /** Counts a stored claim on its host (not in flight: a restored or another process's build). */
  private count(c: Claim): HostState | undefined {
    const s = this.states.get(c.hostId);
    if (!s) return undefined;
    this.held.set(c.id, c);
    this.groups.add(c);
    s.add(c.resources, 1);
    this.countInstance(s, c.instanceId, c.id);
    s.syncCounts();
    if (s.instanceCount > this.peakInstances) this.peakInstances = s.instanceCount;
    return s;
  }

  recordBuildFailure(hostId: string): void {
    const now = this.clock.now();
    this.states.get(hostId)?.failures.push(now);
    this.lastBuildFailureAt = now;
  }

  buildFinished(claim: Claim): void {
    const state = this.states.get(claim.hostId);
    if (!state) return;
    state.inFlight.delete(claim.id);
    state.syncCounts();
  }

  /** The scheduler's view of a host (tests, observability). */
  hostState(hostId: string): HostState | undefined {
    return this.states.get(hostId);
  }

  /** Number of hosts per cell. */
  cellSizes(): Record<string, number> {
    return Object.fromEntries([...this.cells].map(([k, v]) => [k, v.size]));
  }

  // ---- placement -----------------------------------------------------------------------------

  private context(request: PlacementRequest, refused?: ReadonlySet<string>): PlacementContext {
    const ctx = new PlacementContext(request, this.clock.now());
    ctx.lastBuildFailureAt = this.lastBuildFailureAt;
    ctx.fleet = this.fleetFacts();
    if (request.group) {
      const known = this.groups.hostCounts(request.group.id, request.instanceIds);
      if (known) ctx.addKnownMembers(known);
    }
    if (refused) ctx.exclude(refused);
    return ctx;
  }

  async select(request: PlacementRequest): Promise<ExplainedSelection[]> {
    if (this.follower) await this.learn();
    // hosts that refused a claim of this request (another process won them), left out next time
    let refused: Set<string> | undefined;
    let reloaded = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.selectOnce(request, refused);
      } catch (e) {
        const conflict = conflictHost(e);
        if (conflict !== undefined && this.options.claims && attempt < CONFLICT_RETRIES) {
          // another process claimed on a shared store: learn what changed, choose again
          refused ??= new Set();
          refused.add(conflict);
          if (!this.follower) this.restore(await this.options.claims.list());
          else if (refused.size >= CONFLICTS_BEFORE_RELOAD) await this.follower.resync();
          else await this.follower.catchUp();
          continue;
        }
        if (e instanceof NoValidHostError && this.follower && !reloaded) {
          // never refuse on a stale view: reload every claim, try once more with every host
          reloaded = true;
          refused = undefined;
          await this.follower.resync();
          continue;
        }
        throw e;
      }
    }
  }

  private async selectOnce(
    request: PlacementRequest,
    refused: ReadonlySet<string> | undefined,
  ): Promise<ExplainedSelection[]> {
    const ctx = this.context(request, refused);
    const cells = this.route(request);
    const explanation = request.explain ? this.explainIn(cells, ctx) : undefined;
    for (const index of cells) {
      const placed = this.placeAll(index, ctx);
      if (!placed) continue;
      const persisted: Claim[] = [];
      try {
        if (this.options.claims) {
          for (const p of placed) {
            await this.options.claims.add(p.claim);
            persisted.push(p.claim);
          }
        }
      } catch (e) {
        for (const p of placed) this.unclaim(p.claim);
        for (const c of persisted) {
          this.rememberReleased(c);
          await this.options.claims?.remove(c.id).catch(() => undefined);
        }
        throw e;
      }
      return placed.map((p) => ({
        instanceId: p.claim.instanceId,
        hostId: p.claim.hostId,
        claim: p.claim,
        alternateHostIds: p.alternates,
        ...zoneOf(this.states.get(p.claim.hostId)),
        ...(explanation ? { explanation } : {}),
      }));
    }
    throw this.noValidHost(cells, ctx);
  }

  /**
   * Claims for one instance on a host (an alternate on reschedule) if it passes every filter —
   * hard group policies checked against every member claim known now, the request's siblings
   * and members placed since its selection included — and, on a shared store, if the store
   * accepts it. Resolves `undefined` otherwise.
   */
  async claim(hostId: string, request: PlacementRequest): Promise<Claim | undefined> {
    if (this.follower) await this.learn();
    const state = this.states.get(hostId);
    const instanceId = request.instanceIds[0];
    if (!state || instanceId === undefined) return undefined;
    const ctx = this.context({ ...request, instanceIds: [instanceId] });
    if (this.firstRejection(ctx, state)) return undefined;
    const claim = this.take(state, instanceId, ctx.needMap, ctx.request);
    try {
      await this.options.claims?.add(claim);
    } catch (e) {
      this.unclaim(claim);
      if (conflictHost(e) !== undefined) return undefined;
      throw e;
    }
    return claim;
  }

  async release(claim: Claim): Promise<void> {
    if (this.held.has(claim.id)) this.unclaim(claim);
    this.rememberReleased(claim);
    await this.options.claims?.remove(claim.id);
  }

  /** While following a feed: a release whose removal the feed has not shown yet. */
  private rememberReleased(claim: Claim): void {
    if (!this.follower) return;
    this.unconfirmed.delete(claim.id);
    if (this.released.size >= MAX_RELEASED_REMEMBERED) this.released.clear();
    this.released.add(claim.id);
  }

  /** Explains where a request would go, without claiming anything. */
  explain(request: PlacementRequest): PlacementExplanation {
    const ctx = this.context(request);
    return this.explainIn(this.route(request), ctx);
  }

  private fleetCache: { unschedulable: number; restricted: number } | undefined;

  /** Counts kept for pre-filters; host counts are recomputed after host changes. */
  private fleetFacts(): PlacementContext['fleet'] {
    if (!this.fleetCache) {
      let unschedulable = 0;
      let restricted = 0;
      for (const s of this.states.values()) {
        if (!s.schedulable) unschedulable++;
        if (s.allowedProjects !== null) restricted++;
      }
      this.fleetCache = { unschedulable, restricted };
    }
    if (this.releasesSinceRecount > 10_000) {
      this.releasesSinceRecount = 0;
      this.peakInstances = 0;
      this.peakInFlight = 0;
      for (const s of this.states.values()) {
        if (s.instanceCount > this.peakInstances) this.peakInstances = s.instanceCount;
        if (s.inFlightCount > this.peakInFlight) this.peakInFlight = s.inFlightCount;
      }
    }
    return {
      unschedulableHosts: this.fleetCache.unschedulable,
      restrictedHosts: this.fleetCache.restricted,
      peakInstances: this.peakInstances,
      peakInFlight: this.peakInFlight,
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  private cellOf(name: string): HostIndex {
    let index = this.cells.get(name);
    if (!index) {
      index = new HostIndex(name);
      this.cells.set(name, index);
    }
    return index;
  }

  /**
   * Cells to try: the cell named by the `cell` hint, else those holding the requested zone (or
   * all), the one with most free memory first.
   */
  private route(request: PlacementRequest): HostIndex[] {
    const named = request.hints.cell;
    if (named !== undefined) {
      const cell = this.cells.get(named);
      return cell ? [cell] : [];
    }
    const az = request.availabilityZone;
    const cells = [...this.cells.values()].filter((c) => az === undefined || c.hasZone(az));
    if (cells.length > 1) cells.sort((a, b) => b.freeMemory - a.freeMemory);
    return cells.length ? cells : [...this.cells.values()];
  }

  private placeAll(
    index: HostIndex,
    ctx: PlacementContext,
  ): Array<{ claim: Claim; alternates: string[] }> | undefined {
    const out: Array<{ claim: Claim; alternates: string[] }> = [];
    for (const instanceId of ctx.request.instanceIds) {
      const pick = this.pick(index, ctx);
      if (!pick) {
        for (const p of out) {
          this.unclaim(p.claim);
          ctx.unmarkPlaced(p.claim.hostId);
        }
        return undefined;
      }
      const claim = this.take(pick.host, instanceId, ctx.needMap, ctx.request);
      ctx.markPlaced(pick.host.id);
      out.push({ claim, alternates: pick.alternates });
    }
    return out;
  }

  /** Visits candidates until the sampler's limit of feasible hosts, scores them, returns the best. */
  private pick(index: HostIndex, ctx: PlacementContext): Pick | undefined {
    const { profile } = this.options;
    const zone = ctx.request.availabilityZone;
    const limit = sampleLimit(profile.sampling, index.zoneSize(zone));
    const feasible: HostState[] = [];
    const filters = activeFilters(profile, ctx);
    const nFilters = filters.length;
    index.forEachCandidate(zone, ctx.needMap.MEMORY_MB ?? 0, this.random, (host) => {
      for (let i = 0; i < nFilters; i++) if (!filters[i]!.filter(ctx, host).ok) return false;
      feasible.push(host);
      return feasible.length >= limit;
    });
    if (feasible.length === 0) return undefined;
    if (feasible.length === 1) return { host: feasible[0]!, alternates: [] };
    const totals = this.score(ctx, feasible);
    const best = topIndices(totals, 1 + profile.alternates);
    return { host: feasible[best[0]!]!, alternates: best.slice(1).map((i) => feasible[i]!.id) };
  }

  /** Weighted sum of min-max normalised raw scores per candidate. */
  private score(
    ctx: PlacementContext,
    hosts: readonly HostState[],
    detail?: Map<HostState, Record<string, { raw: number; normalized: number; weighted: number }>>,
  ): number[] {
    const n = hosts.length;
    const totals = new Array<number>(n).fill(0);
    const raw = new Array<number>(n);
    for (const { plugin, weight } of this.options.profile.scorers) {
      if (weight === 0 || (plugin.appliesTo && !plugin.appliesTo(ctx))) continue;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const r = plugin.score(ctx, hosts[i]!);
        raw[i] = r;
        if (r < min) min = r;
        if (r > max) max = r;
      }
      const range = max - min;
      for (let i = 0; i < n; i++) {
        const normalized = range > 0 ? (raw[i]! - min) / range : 0;
        totals[i]! += weight * normalized;
        if (detail) {
          let d = detail.get(hosts[i]!);
          if (!d) {
            d = {};
            detail.set(hosts[i]!, d);
          }
          d[plugin.name] = { raw: raw[i]!, normalized, weighted: weight * normalized };
        }
      }
    }
    return totals;
  }

  private firstRejection(
    ctx: PlacementContext,
    host: HostState,
  ): { filter: FilterPlugin; reasons: readonly string[] } | undefined {
    for (const f of this.options.profile.filters) {
      const status = f.filter(ctx, host);
      if (!status.ok) return { filter: f, reasons: status.reasons };
    }
    return undefined;
  }

  /** Records the instance's claim on the host, remembering a claim of it already there. */
  private countInstance(state: HostState, instanceId: string, claimId: string): void {
    const before = state.instances.get(instanceId);
    if (before !== undefined && before !== claimId) this.displaced.set(claimId, before);
    state.instances.set(instanceId, claimId);
  }

  private take(
    state: HostState,
    instanceId: string,
    need: Readonly<Record<string, number>>,
    request: PlacementRequest,
  ): Claim {
    const group = request.group;
    const id = newId();
    const createdAt = this.clock.now();
    const hostId = state.id;
    let claim: Claim;
    if (group) {
      const member: GroupMemberClaim = {
        id,
        instanceId,
        hostId,
        resources: need,
        createdAt,
        group: { id: group.id, policy: group.policy },
      };
      claim = member;
      this.groups.add(claim);
    } else claim = { id, instanceId, hostId, resources: need, createdAt };
    if (this.follower) this.unconfirmed.add(claim.id);
    state.add(need, 1);
    this.countInstance(state, instanceId, claim.id);
    state.inFlight.add(claim.id);
    state.syncCounts();
    if (state.instanceCount > this.peakInstances) this.peakInstances = state.instanceCount;
    if (state.inFlightCount > this.peakInFlight) this.peakInFlight = state.inFlightCount;
    this.held.set(claim.id, claim);
    this.cells.get(state.host.cell)?.reposition(state);
    for (const r of this.options.profile.reservers) r.reserve(state, claim);
    return claim;
  }

  private unclaim(claim: Claim): void {
    if (!this.held.delete(claim.id)) return;
    this.groups.remove(claim);
    this.unconfirmed.delete(claim.id);
    this.releasesSinceRecount++;
    const state = this.states.get(claim.hostId);
    if (!state) return;
    state.add(claim.resources, -1);
    if (state.instances.get(claim.instanceId) === claim.id) {
      const prior = this.displaced.get(claim.id);
      if (prior !== undefined && this.held.has(prior)) state.instances.set(claim.instanceId, prior);
      else state.instances.delete(claim.instanceId);
    }
    this.displaced.delete(claim.id);
    state.inFlight.delete(claim.id);
    state.syncCounts();
    this.cells.get(state.host.cell)?.reposition(state);
    for (const r of this.options.profile.reservers) r.unreserve(state, claim);
  }

  /** Counts, over every host of the routed cells, the first filter rejecting it and why. */
  private countRejections(
    cells: readonly HostIndex[],
    ctx: PlacementContext,
  ): Record<string, Record<string, number>> {
    const rejections: Record<string, Record<string, number>> = {};
    for (const index of cells) {
      for (const host of index.hosts.values()) {
        const r = this.firstRejection(ctx, host);
        if (!r) continue;
        rejections[r.filter.name] ??= {};
        const byReason = rejections[r.filter.name]!;
        for (const reason of r.reasons) byReason[reason] = (byReason[reason] ?? 0) + 1;
      }
    }
    return rejections;
  }

  private noValidHost(cells: readonly HostIndex[], ctx: PlacementContext): NoValidHostError {
    const hostsConsidered = cells.reduce((s, c) => s + c.size, 0);
    // For a multi-instance request, explain with the hosts the earlier instances would have taken.
    const partial = ctx.request.instanceIds.length > 1 ? this.replayPartial(cells, ctx) : undefined;
    const rejections = this.countRejections(cells, ctx);
    partial?.();
    return new NoValidHostError({ hostsConsidered, rejections, requested: ctx.request.instanceIds.length });
  }

  /** Re-places as many instances as fit in the largest cell, returning an undo. */
  private replayPartial(cells: readonly HostIndex[], ctx: PlacementContext): () => void {
    const index = cells[0];
    const taken: Claim[] = [];
    if (index) {
      for (const instanceId of ctx.request.instanceIds) {
        const pick = this.pick(index, ctx);
        if (!pick) break;
        taken.push(this.take(pick.host, instanceId, ctx.needMap, ctx.request));
        ctx.markPlaced(pick.host.id);
      }
    }
    return () => {
      for (const c of taken) {
        this.unclaim(c);
        ctx.unmarkPlaced(c.hostId);
      }
    };
  }

  private explainIn(cells: readonly HostIndex[], ctx: PlacementContext): PlacementExplanation {
    const verdicts: HostVerdict[] = [];
    const feasible: HostState[] = [];
    for (const index of cells) {
      for (const host of index.hosts.values()) {
        const r = this.firstRejection(ctx, host);
        if (r)
          verdicts.push({
            hostId: host.id,
            cell: index.cell,
            passed: false,
            rejectedBy: r.filter.name,
            reasons: r.reasons,
          });
        else feasible.push(host);
      }
    }
    const detail = new Map<
      HostState,
      Record<string, { raw: number; normalized: number; weighted: number }>
    >();
    const totals = this.score(ctx, feasible, detail);
    let best: string | undefined;
    let bestTotal = Number.NEGATIVE_INFINITY;
    feasible.forEach((host, i) => {
      const total = totals[i]!;
      if (total > bestTotal) {
        bestTotal = total;
        best = host.id;
      }
      verdicts.push({
        hostId: host.id,
        cell: host.host.cell,
        passed: true,
        scores: detail.get(host) ?? {},
        total,
      });
    });
    return {
      profile: this.options.profile.name,
      hostsConsidered: verdicts.length,
      chosen: best,
      rejections: this.countRejections(cells, ctx),
      hosts: verdicts,
    };
  }
}

/** The profile's filters that have something to check for this request (pre-filter). */
function activeFilters(profile: ResolvedProfile, ctx: PlacementContext): FilterPlugin[] {
  const out: FilterPlugin[] = [];
  for (const f of profile.filters) if (!f.appliesTo || f.appliesTo(ctx)) out.push(f);
  return out;
}

/** Indices of the `k` largest values, largest first (ties keep the earlier index). */
function topIndices(values: readonly number[], k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (best.length === k && v <= values[best[k - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && values[best[at - 1]!]! < v) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** The host of a `ClaimConflictError` (another process won the claim), else undefined. */
function conflictHost(e: unknown): string | undefined {
  const err = e as { code?: unknown; details?: { hostId?: unknown } } | null;
  if (err?.code !== 'NLFS_CLAIM_CONFLICT') return undefined;
  return typeof err.details?.hostId === 'string' ? err.details.hostId : '';
}

/** The host's availability zone for a selection, when the scheduler knows the host. */
function zoneOf(state: HostState | undefined): { availabilityZone?: string } {
  return state ? { availabilityZone: state.host.availabilityZone } : {};
}
