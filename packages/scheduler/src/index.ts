/**
 * `@nova-lfs/scheduler`: a filter / score / reserve plugin scheduler with an indexed host
 * structure, cells, candidate sampling, race-free claims and explanations.
 * @packageDocumentation
 */

export {
  createScheduler,
  registerScheduler,
  type SchedulerOptions,
  schedulerFactory,
  schedulerOptionsToken,
  schedulerPluginsToken,
  schedulerRegistry,
} from './create-scheduler.js';
export {
  DuplicatePluginError,
  InvalidProfileError,
  SchedulerErrorCode,
  UnknownPluginError,
} from './errors.js';
export type { HostVerdict, PlacementExplanation } from './explanation.js';
export { AggregateMetadataFilter, AggregateMetadataReason } from './filters/aggregate-metadata-filter.js';
export { AvailabilityZoneFilter, AvailabilityZoneReason } from './filters/availability-zone-filter.js';
export { HostAvailableFilter, HostAvailableReason } from './filters/host-available-filter.js';
export {
  DifferentHostFilter,
  ExcludedHostsFilter,
  HostHintsReason,
  SameHostFilter,
} from './filters/host-hints-filter.js';
export { ImagePropertiesFilter, ImagePropertiesReason } from './filters/image-properties-filter.js';
export { LimitsReason, MaxInFlightBuildsFilter, MaxInstancesFilter } from './filters/limits-filters.js';
export { ResourcesFilter, ResourcesReason } from './filters/resources-filter.js';
export { ServerGroupFilter, ServerGroupReason } from './filters/server-group-filter.js';
export {
  TENANT_METADATA_KEY,
  TenantIsolationFilter,
  TenantIsolationReason,
} from './filters/tenant-isolation-filter.js';
export { TraitsFilter, TraitsReason } from './filters/traits-filter.js';
export { bucketOf, HostIndex } from './host-index.js';
export { HostState } from './host-state.js';
export {
  AGGREGATE_SPEC_PREFIX,
  CAPABILITY_SPEC_PREFIX,
  PlacementContext,
  TRAIT_SPEC_PREFIX,
} from './placement-context.js';
export {
  type FilterPlugin,
  isFilterPlugin,
  isReservePlugin,
  isScorePlugin,
  type ReservePlugin,
  type SchedulerPlugin,
  type ScorePlugin,
} from './plugin.js';
export {
  type ExplainedSelection,
  PluginScheduler,
  type PluginSchedulerOptions,
} from './plugin-scheduler.js';
export {
  type BuiltinPluginOptions,
  binpackProfile,
  builtinRegistry,
  defaultFilters,
  type ResolvedProfile,
  resolveProfile,
  type Sampling,
  type SchedulerProfile,
  sampleLimit,
  spreadProfile,
} from './profile.js';
export { PluginRegistry } from './registry.js';
export { BuildFailureScorer } from './scorers/build-failure-scorer.js';
export { SoftAffinityScorer, SoftAntiAffinityScorer } from './scorers/group-scorers.js';
export { diskScorer, ResourceScorer, ramScorer, vcpuScorer } from './scorers/resource-scorer.js';
export { type FilterStatus, Success, unschedulable } from './status.js';
