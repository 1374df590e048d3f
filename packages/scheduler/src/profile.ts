import { InvalidProfileError, UnknownPluginError } from './errors.js';
import { AggregateMetadataFilter } from './filters/aggregate-metadata-filter.js';
import { AvailabilityZoneFilter } from './filters/availability-zone-filter.js';
import { HostAvailableFilter } from './filters/host-available-filter.js';
import { DifferentHostFilter, ExcludedHostsFilter, SameHostFilter } from './filters/host-hints-filter.js';
import { ImagePropertiesFilter } from './filters/image-properties-filter.js';
import { MaxInFlightBuildsFilter, MaxInstancesFilter } from './filters/limits-filters.js';
import { ResourcesFilter } from './filters/resources-filter.js';
import { ServerGroupFilter } from './filters/server-group-filter.js';
import { TenantIsolationFilter } from './filters/tenant-isolation-filter.js';
import { TraitsFilter } from './filters/traits-filter.js';
import {
  type FilterPlugin,
  isFilterPlugin,
  isReservePlugin,
  isScorePlugin,
  type ReservePlugin,
  type ScorePlugin,
} from './plugin.js';
import { PluginRegistry } from './registry.js';
import { BuildFailureScorer } from './scorers/build-failure-scorer.js';
import { SoftAffinityScorer, SoftAntiAffinityScorer } from './scorers/group-scorers.js';
import { diskScorer, ramScorer, vcpuScorer } from './scorers/resource-scorer.js';

/** How many feasible hosts a decision looks for before scoring. */
export type Sampling =
  /** Score every feasible host. */
  | { readonly mode: 'exhaustive' }
  /** Stop after `max(min, ceil(log2(hosts)))` feasible hosts (Nomad's limit). */
  | { readonly mode: 'log2'; readonly min?: number }
  /** Stop after `max(min, ceil(hosts × percent / 100))` feasible hosts (Kubernetes' percentageOfNodesToScore). */
  | { readonly mode: 'percentage'; readonly percent: number; readonly min?: number };

/** Which plugins run, in which order, with which weights. */
export interface SchedulerProfile {
  readonly name: string;
  /** Filter plugin names, run in this order; a host stops at its first rejection. */
  readonly filters: readonly string[];
  /** Score plugin names with weights (negative inverts: pack instead of spread). */
  readonly scorers: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  /** Reserve plugin names, told of every claim and release. */
  readonly reservers?: readonly string[];
  /** Default `{ mode: 'log2', min: 8 }`. */
  readonly sampling?: Sampling;
  /** Alternates per selection for rescheduling (default 2). */
  readonly alternates?: number;
}

/**
 * The default filter order, cheapest and most selective first: exclusions and host availability
 * (O(1), removes unusable hosts), zone (the index already routes, this keeps explanations
 * complete), resources (the most selective in a busy cloud), then traits, image properties,
 * aggregates and tenancy (set lookups), then group and hint policies (need request state), then
 * the per-host instance limit. `MaxInFlightBuilds` is not listed: like Nova's `IoOpsFilter`
 * (`max_io_ops_per_host`) it is an opt-in limit (see {@link BuiltinPluginOptions.maxInFlightBuilds}).
 */
export const defaultFilters: readonly string[] = Object.freeze([
  'ExcludedHosts',
  'HostAvailable',
  'AvailabilityZone',
  'Resources',
  'Traits',
  'ImageProperties',
  'AggregateMetadata',
  'TenantIsolation',
  'ServerGroup',
  'SameHost',
  'DifferentHost',
  'MaxInstances',
]);

/** Spread instances (most free RAM, then vCPU) — Nova's default weighers. */
export const spreadProfile: SchedulerProfile = Object.freeze({
  name: 'spread',
  filters: defaultFilters,
  scorers: [
    { name: 'RamScorer', weight: 1 },
    { name: 'VcpuScorer', weight: 1 },
    { name: 'DiskScorer', weight: 0.5 },
    { name: 'SoftAffinity', weight: 2 },
    { name: 'SoftAntiAffinity', weight: 2 },
    { name: 'BuildFailure', weight: 10 },
  ],
});

/** Pack instances onto the fullest hosts that fit (negative resource weights). */
export const binpackProfile: SchedulerProfile = Object.freeze({
  ...spreadProfile,
  name: 'binpack',
  scorers: [
    { name: 'RamScorer', weight: -1 },
    { name: 'VcpuScorer', weight: -1 },
    { name: 'DiskScorer', weight: -0.5 },
    { name: 'SoftAffinity', weight: 2 },
    { name: 'SoftAntiAffinity', weight: 2 },
    { name: 'BuildFailure', weight: 10 },
  ],
});

/** Options of the built-in plugins. */
export interface BuiltinPluginOptions {
  /** MaxInstances filter limit (default 50). */
  readonly maxInstancesPerHost?: number;
  /**
   * Opt-in limit of builds in flight per host (Nova's `max_io_ops_per_host`). Off by default;
   * when set, `createScheduler` runs the MaxInFlightBuilds filter (appended to the built-in
   * profiles' filters; a profile of your own lists it by name, then its limit is this value or 8).
   * A request's own instances never count against it.
   */
  readonly maxInFlightBuilds?: number;
  /** BuildFailure scorer memory in ms (default 10 min). */
  readonly buildFailureWindowMs?: number;
}

/** A registry holding every built-in filter and scorer. */
export function builtinRegistry(options: BuiltinPluginOptions = {}): PluginRegistry {
  return new PluginRegistry()
    .register(new ExcludedHostsFilter())
    .register(new HostAvailableFilter())
    .register(new AvailabilityZoneFilter())
    .register(new ResourcesFilter())
    .register(new TraitsFilter())
    .register(new ImagePropertiesFilter())
    .register(new AggregateMetadataFilter())
    .register(new TenantIsolationFilter())
    .register(new ServerGroupFilter())
    .register(new SameHostFilter())
    .register(new DifferentHostFilter())
    .register(new MaxInstancesFilter(options.maxInstancesPerHost ?? 50))
    .register(new MaxInFlightBuildsFilter(options.maxInFlightBuilds ?? 8))
    .register(ramScorer())
    .register(vcpuScorer())
    .register(diskScorer())
    .register(new SoftAffinityScorer())
    .register(new SoftAntiAffinityScorer())
    .register(new BuildFailureScorer(options.buildFailureWindowMs));
}

/** A profile resolved against a registry: the plugin objects themselves. */
export interface ResolvedProfile {
  readonly name: string;
  readonly filters: readonly FilterPlugin[];
  readonly scorers: ReadonlyArray<{ readonly plugin: ScorePlugin; readonly weight: number }>;
  readonly reservers: readonly ReservePlugin[];
  readonly sampling: Sampling;
  readonly alternates: number;
}

/**
 * Resolves a profile's plugin names.
 * @throws UnknownPluginError for a missing or wrong-kind plugin; InvalidProfileError for bad weights.
 */
export function resolveProfile(registry: PluginRegistry, profile: SchedulerProfile): ResolvedProfile {
  const filters = profile.filters.map((name) => {
    const p = registry.get(name);
    if (!p || !isFilterPlugin(p)) throw new UnknownPluginError(name, 'filter', profile.name);
    return p;
  });
  const scorers = profile.scorers.map(({ name, weight }, i) => {
    const p = registry.get(name);
    if (!p || !isScorePlugin(p)) throw new UnknownPluginError(name, 'score', profile.name);
    if (!Number.isFinite(weight))
      throw new InvalidProfileError(profile.name, `scorers.${i}.weight`, 'must be finite');
    return { plugin: p, weight };
  });
  const reservers = (profile.reservers ?? []).map((name) => {
    const p = registry.get(name);
    if (!p || !isReservePlugin(p)) throw new UnknownPluginError(name, 'reserve', profile.name);
    return p;
  });
  const alternates = profile.alternates ?? 2;
  if (!Number.isInteger(alternates) || alternates < 0) {
    throw new InvalidProfileError(profile.name, 'alternates', 'must be a non-negative integer');
  }
  return {
    name: profile.name,
    filters,
    scorers,
    reservers,
    sampling: profile.sampling ?? { mode: 'log2', min: 8 },
    alternates,
  };
}

/** How many feasible candidates to look for among `hosts` hosts. */
export function sampleLimit(sampling: Sampling, hosts: number): number {
  switch (sampling.mode) {
    case 'exhaustive':
      return Number.POSITIVE_INFINITY;
    case 'log2':
      return Math.max(sampling.min ?? 8, Math.ceil(Math.log2(Math.max(2, hosts))));
    case 'percentage':
      return Math.max(sampling.min ?? 8, Math.ceil((hosts * sampling.percent) / 100));
  }
}
