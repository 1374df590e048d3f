import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link AvailabilityZoneFilter}. */
export const AvailabilityZoneReason = { WrongZone: 'not in the requested availability zone' } as const;
const WRONG = unschedulable(AvailabilityZoneReason.WrongZone);

/** Keeps hosts of the requested availability zone (the host index already routes by zone). */
export class AvailabilityZoneFilter implements FilterPlugin {
  readonly name = 'AvailabilityZone';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.request.availabilityZone !== undefined;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    const az = ctx.request.availabilityZone;
    return az === undefined || host.host.availabilityZone === az ? Success : WRONG;
  }
}
