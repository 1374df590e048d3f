import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link SameHostFilter} and {@link DifferentHostFilter}. */
export const HostHintsReason = {
  NotSameHost: 'not the host of the same_host instances',
  SameAsDifferentHost: 'host of a different_host instance',
  Excluded: 'excluded for this request',
} as const;
const NOT_SAME = unschedulable(HostHintsReason.NotSameHost);
const DIFFERENT = unschedulable(HostHintsReason.SameAsDifferentHost);
const EXCLUDED = unschedulable(HostHintsReason.Excluded);

/** `same_host` hint: only hosts of the named instances (Nova's SameHostFilter). */
export class SameHostFilter implements FilterPlugin {
  readonly name = 'SameHost';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.sameHost !== undefined;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    return ctx.sameHost === undefined || ctx.sameHost.has(host.id) ? Success : NOT_SAME;
  }
}

/** `different_host` hint: never hosts of the named instances (Nova's DifferentHostFilter). */
export class DifferentHostFilter implements FilterPlugin {
  readonly name = 'DifferentHost';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.differentHost !== undefined;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    return ctx.differentHost?.has(host.id) ? DIFFERENT : Success;
  }
}

/** Hosts the caller excluded (e.g. already failed for this build). */
export class ExcludedHostsFilter implements FilterPlugin {
  readonly name = 'ExcludedHosts';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.excluded !== undefined;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    return ctx.excluded?.has(host.id) ? EXCLUDED : Success;
  }
}
