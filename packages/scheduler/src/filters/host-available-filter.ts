import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link HostAvailableFilter}. */
export const HostAvailableReason = { Disabled: 'host disabled', Down: 'host down' } as const;
const DISABLED = unschedulable(HostAvailableReason.Disabled);
const DOWN = unschedulable(HostAvailableReason.Down);

/** Rejects hosts an operator disabled and hosts that are down (Nova's ComputeFilter). */
export class HostAvailableFilter implements FilterPlugin {
  readonly name = 'HostAvailable';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.fleet.unschedulableHosts > 0;
  }
  filter(_ctx: unknown, host: HostState): FilterStatus {
    if (host.schedulable) return Success;
    if (!host.host.enabled) return DISABLED;
    if (!host.host.up) return DOWN;
    return Success;
  }
}
