import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link ResourcesFilter}: one per resource class (`insufficient VCPU`, ...). */
export const ResourcesReason = {
  insufficient: (rc: string): string => `insufficient ${rc}`,
  missing: (rc: string): string => `no ${rc} inventory`,
} as const;
const cache = new Map<string, FilterStatus>();
const rejection = (reason: string): FilterStatus => {
  let s = cache.get(reason);
  if (!s) {
    s = unschedulable(reason);
    cache.set(reason, s);
  }
  return s;
};

/**
 * Rejects hosts without room for the flavor's resources (VCPU, MEMORY_MB, DISK_GB and CUSTOM_*),
 * capacity being `(total - reserved) * allocationRatio` minus what claims hold (Placement's rule).
 */
export class ResourcesFilter implements FilterPlugin {
  readonly name = 'Resources';
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    if (
      host.freeVcpu >= ctx.needVcpu &&
      host.freeMemory >= ctx.needMemory &&
      host.freeDisk >= ctx.needDisk &&
      !ctx.needCustom
    ) {
      return Success;
    }
    for (const [rc, amount] of ctx.need) {
      const cap = host.capacity[rc];
      if (cap === undefined) return rejection(ResourcesReason.missing(rc));
      if ((host.used[rc] ?? 0) + amount > cap) return rejection(ResourcesReason.insufficient(rc));
    }
    return Success;
  }
}
