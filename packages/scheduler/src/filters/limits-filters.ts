import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link MaxInstancesFilter} and {@link MaxInFlightBuildsFilter}. */
export const LimitsReason = {
  TooManyInstances: 'max instances per host reached',
  TooManyBuilds: 'max builds in flight reached',
} as const;
const INSTANCES = unschedulable(LimitsReason.TooManyInstances);
const BUILDS = unschedulable(LimitsReason.TooManyBuilds);

/** At most `max` instances per host (Nova's NumInstancesFilter, default 50). */
export class MaxInstancesFilter implements FilterPlugin {
  readonly name = 'MaxInstances';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.fleet.peakInstances + ctx.request.instanceIds.length > this.max - 1;
  }
  constructor(readonly max = 50) {}
  filter(_ctx: unknown, host: HostState): FilterStatus {
    return host.instanceCount >= this.max ? INSTANCES : Success;
  }
}

/**
 * At most `max` builds of *other* requests in flight per host (Nova's IoOpsFilter, opt-in): the
 * instances of the request being placed never count, so one request for more instances than
 * `max` still fits a host with room.
 */
export class MaxInFlightBuildsFilter implements FilterPlugin {
  readonly name = 'MaxInFlightBuilds';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.fleet.peakInFlight > this.max - 1;
  }
  constructor(readonly max = 8) {}
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    return host.inFlightCount - ctx.placedOn(host.id) >= this.max ? BUILDS : Success;
  }
}
