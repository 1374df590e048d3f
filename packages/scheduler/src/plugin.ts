import type { Claim } from '@nova-lfs/core';
import type { HostState } from './host-state.js';
import type { PlacementContext } from './placement-context.js';
import type { FilterStatus } from './status.js';

/** A named scheduler plugin. One object may implement several extension points. */
export interface SchedulerPlugin {
  /** Unique name; profiles refer to plugins by it. */
  readonly name: string;
}

/**
 * Filter extension point: may the instance go on this host? Must be fast and allocation-free
 * (return pre-built statuses); runs for many hosts per decision.
 */
export interface FilterPlugin extends SchedulerPlugin {
  /**
   * Pre-filter: whether the filter has anything to check for this request (the framework's
   * PreFilter `Skip`). Omitted means always. Skipped filters cost nothing per host.
   */
  appliesTo?(ctx: PlacementContext): boolean;
  filter(ctx: PlacementContext, host: HostState): FilterStatus;
}

/**
 * Score extension point: a raw score for a feasible host (any scale). The scheduler normalises
 * raw scores to 0..1 across the candidates and multiplies by the profile's weight; a negative
 * weight inverts a scorer (spread ↔ pack).
 */
export interface ScorePlugin extends SchedulerPlugin {
  /** Whether the scorer can tell hosts apart for this request; omitted means always. */
  appliesTo?(ctx: PlacementContext): boolean;
  score(ctx: PlacementContext, host: HostState): number;
}

/** Reserve extension point: told when a claim is made or released on a host. */
export interface ReservePlugin extends SchedulerPlugin {
  reserve(host: HostState, claim: Claim): void;
  unreserve(host: HostState, claim: Claim): void;
}

/** Type guard: the plugin implements the filter extension point. */
export function isFilterPlugin(p: SchedulerPlugin): p is FilterPlugin {
  return typeof (p as FilterPlugin).filter === 'function';
}
/** Type guard: the plugin implements the score extension point. */
export function isScorePlugin(p: SchedulerPlugin): p is ScorePlugin {
  return typeof (p as ScorePlugin).score === 'function';
}
/** Type guard: the plugin implements the reserve extension point. */
export function isReservePlugin(p: SchedulerPlugin): p is ReservePlugin {
  return (
    typeof (p as ReservePlugin).reserve === 'function' && typeof (p as ReservePlugin).unreserve === 'function'
  );
}
