import { type Flavor, flavorResources, type PlacementRequest } from '@nova-lfs/core';

/** Prefix of flavor extra specs naming required / forbidden traits (Nova's `trait:NAME=required`). */
export const TRAIT_SPEC_PREFIX = 'trait:';
/** Prefix of flavor extra specs matched against aggregate metadata (Nova's AggregateInstanceExtraSpecsFilter). */
export const AGGREGATE_SPEC_PREFIX = 'aggregate_instance_extra_specs:';
/** Prefix of flavor extra specs naming driver capabilities that must be on (`capabilities:suspend=true`). */
export const CAPABILITY_SPEC_PREFIX = 'capabilities:';

/** Upper bounds over every host, kept by the scheduler for pre-filters. */
export interface FleetFacts {
  /** Hosts disabled or down. */
  readonly unschedulableHosts: number;
  /** Hosts restricted to some projects by tenant-isolation aggregates. */
  readonly restrictedHosts: number;
  /** An upper bound of the instances on any one host. */
  readonly peakInstances: number;
  /** An upper bound of the builds in flight on any one host. */
  readonly peakInFlight: number;
}

/** What a flavor asks of a host, digested once per flavor object (flavors are not mutated). */
type FlavorDigest = Pick<
  PlacementContext,
  | 'needMap'
  | 'need'
  | 'needVcpu'
  | 'needMemory'
  | 'needDisk'
  | 'needCustom'
  | 'requiredTraits'
  | 'forbiddenTraits'
  | 'aggregateSpecs'
  | 'requiredCapabilities'
>;

const digests = new WeakMap<Flavor, FlavorDigest>();

function digestOf(flavor: Flavor): FlavorDigest {
  const cached = digests.get(flavor);
  if (cached) return cached;
  // frozen: every claim of the flavor shares these amounts
  const needMap = Object.freeze(flavorResources(flavor));
  const need = Object.entries(needMap).filter(([, v]) => v > 0);
  const required: string[] = [];
  const forbidden: string[] = [];
  const aggregate: Array<[string, string]> = [];
  const capabilities: string[] = [];
  for (const [key, value] of Object.entries(flavor.extraSpecs)) {
    if (key.startsWith(TRAIT_SPEC_PREFIX)) {
      const trait = key.slice(TRAIT_SPEC_PREFIX.length);
      if (value === 'required') required.push(trait);
      else if (value === 'forbidden') forbidden.push(trait);
    } else if (key.startsWith(AGGREGATE_SPEC_PREFIX)) {
      aggregate.push([key.slice(AGGREGATE_SPEC_PREFIX.length), value]);
    } else if (key.startsWith(CAPABILITY_SPEC_PREFIX) && value === 'true') {
      capabilities.push(key.slice(CAPABILITY_SPEC_PREFIX.length));
    }
  }
  const digest: FlavorDigest = {
    needMap,
    need,
    needVcpu: needMap.VCPU ?? 0,
    needMemory: needMap.MEMORY_MB ?? 0,
    needDisk: needMap.DISK_GB ?? 0,
    needCustom: need.some(([rc]) => rc !== 'VCPU' && rc !== 'MEMORY_MB' && rc !== 'DISK_GB'),
    requiredTraits: required,
    forbiddenTraits: forbidden,
    aggregateSpecs: aggregate,
    requiredCapabilities: capabilities,
  };
  digests.set(flavor, digest);
  return digest;
}

/**
 * A placement request digested once for the filters and scorers: resources needed, traits,
 * aggregate specs, group members per host, hint sets. Mutated only by the scheduler as it places
 * the instances of one multi-instance request (`placed`).
 */
export class PlacementContext {
  /** Resource amounts per instance, non-zero entries only. */
  readonly need: ReadonlyArray<readonly [string, number]>;
  readonly needMap: Readonly<Record<string, number>>;
  /** Standard amounts as numbers, and whether any other class is needed (fast path of filters). */
  readonly needVcpu: number;
  readonly needMemory: number;
  readonly needDisk: number;
  readonly needCustom: boolean;
  readonly requiredTraits: readonly string[];
  readonly forbiddenTraits: readonly string[];
  readonly aggregateSpecs: ReadonlyArray<readonly [string, string]>;
  readonly requiredCapabilities: readonly string[];
  /**
   * Group members per host: existing members (those the engine resolved, or the claims the
   * scheduler knows of, whichever counts more) plus instances placed so far in this request.
   */
  readonly groupHosts = new Map<string, number>();
  readonly sameHost: ReadonlySet<string> | undefined;
  readonly differentHost: ReadonlySet<string> | undefined;
  excluded: ReadonlySet<string> | undefined;
  /** Hosts chosen so far for this request's instances, in order. */
  readonly placed: string[] = [];
  /** Instances of this request placed so far, per host. */
  private placedCounts: Map<string, number> | undefined;
  /** When the scheduler last recorded a build failure on any host (ms; -Infinity if never). */
  lastBuildFailureAt = Number.NEGATIVE_INFINITY;
  /** Facts about all hosts that let pre-filters skip filters that cannot reject anyone. */
  fleet: FleetFacts = {
    unschedulableHosts: 1,
    restrictedHosts: 1,
    peakInstances: Number.POSITIVE_INFINITY,
    peakInFlight: Number.POSITIVE_INFINITY,
  };

  constructor(
    readonly request: PlacementRequest,
    readonly now: number,
  ) {
    const d = digestOf(request.flavor);
    this.needMap = d.needMap;
    this.need = d.need;
    this.needVcpu = d.needVcpu;
    this.needMemory = d.needMemory;
    this.needDisk = d.needDisk;
    this.needCustom = d.needCustom;
    this.requiredTraits = d.requiredTraits;
    this.forbiddenTraits = d.forbiddenTraits;
    this.aggregateSpecs = d.aggregateSpecs;
    this.requiredCapabilities = d.requiredCapabilities;
    for (const h of request.group?.memberHostIds ?? [])
      this.groupHosts.set(h, (this.groupHosts.get(h) ?? 0) + 1);
    this.sameHost = request.sameHostIds?.length ? new Set(request.sameHostIds) : undefined;
    this.differentHost = request.differentHostIds?.length ? new Set(request.differentHostIds) : undefined;
    this.excluded = request.excludedHostIds?.length ? new Set(request.excludedHostIds) : undefined;
  }

  /**
   * Counts group members the scheduler knows of from their claims (members placed by other
   * requests or processes since the engine resolved the group, the request's own siblings on a
   * reschedule). A host counts the larger of the two views. Call before placing anything.
   */
  addKnownMembers(hostCounts: ReadonlyMap<string, number>): void {
    for (const [hostId, n] of hostCounts) {
      if (n > (this.groupHosts.get(hostId) ?? 0)) this.groupHosts.set(hostId, n);
    }
  }

  /** Leaves out hosts as well as those the request excludes (hosts that just refused a claim). */
  exclude(hostIds: ReadonlySet<string>): void {
    if (hostIds.size === 0) return;
    this.excluded = this.excluded ? new Set([...this.excluded, ...hostIds]) : hostIds;
  }

  /** Records that one instance of the request was placed on `hostId`. */
  markPlaced(hostId: string): void {
    this.placed.push(hostId);
    this.placedCounts ??= new Map();
    this.placedCounts.set(hostId, (this.placedCounts.get(hostId) ?? 0) + 1);
    if (this.request.group) this.groupHosts.set(hostId, (this.groupHosts.get(hostId) ?? 0) + 1);
  }

  /** Reverts {@link markPlaced} (all-or-nothing rollback). */
  unmarkPlaced(hostId: string): void {
    const at = this.placed.lastIndexOf(hostId);
    if (at >= 0) this.placed.splice(at, 1);
    const left = (this.placedCounts?.get(hostId) ?? 0) - 1;
    if (left > 0) this.placedCounts?.set(hostId, left);
    else this.placedCounts?.delete(hostId);
    if (this.request.group) {
      const n = (this.groupHosts.get(hostId) ?? 0) - 1;
      if (n > 0) this.groupHosts.set(hostId, n);
      else this.groupHosts.delete(hostId);
    }
  }

  /** Number of this request's instances placed so far on a host. */
  placedOn(hostId: string): number {
    return this.placedCounts?.get(hostId) ?? 0;
  }

  /** Number of group members (existing or just placed) on a host. */
  groupCount(hostId: string): number {
    return this.groupHosts.get(hostId) ?? 0;
  }
}
