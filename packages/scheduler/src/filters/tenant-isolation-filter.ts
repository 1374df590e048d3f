import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

export { TENANT_METADATA_KEY } from '../host-state.js';
/** Reasons of {@link TenantIsolationFilter}. */
export const TenantIsolationReason = { OtherTenant: 'host reserved for other projects' } as const;
const OTHER = unschedulable(TenantIsolationReason.OtherTenant);

/**
 * Hosts in aggregates with `filter_tenant_id` metadata take only the projects listed there (the
 * union over the host's aggregates; Nova's AggregateMultiTenancyIsolation).
 */
export class TenantIsolationFilter implements FilterPlugin {
  readonly name = 'TenantIsolation';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.fleet.restrictedHosts > 0;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    const allowed = host.allowedProjects;
    return allowed === null || allowed.has(ctx.request.projectId) ? Success : OTHER;
  }
}
