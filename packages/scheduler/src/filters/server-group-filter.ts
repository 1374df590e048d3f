import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link ServerGroupFilter}. */
export const ServerGroupReason = {
  AntiAffinity: 'anti-affinity: a group member is on this host',
  Affinity: 'affinity: group members are on another host',
} as const;
const ANTI = unschedulable(ServerGroupReason.AntiAffinity);
const AFF = unschedulable(ServerGroupReason.Affinity);

/**
 * Hard server-group policies: `anti-affinity` keeps members (including those placed earlier in the
 * same request) on distinct hosts; `affinity` keeps them all on the first member's host.
 */
export class ServerGroupFilter implements FilterPlugin {
  readonly name = 'ServerGroup';
  appliesTo(ctx: PlacementContext): boolean {
    const p = ctx.request.group?.policy;
    return p === 'anti-affinity' || p === 'affinity';
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    const policy = ctx.request.group?.policy;
    if (policy === 'anti-affinity') return ctx.groupCount(host.id) > 0 ? ANTI : Success;
    if (policy === 'affinity') {
      if (ctx.groupHosts.size === 0) return Success;
      return ctx.groupCount(host.id) > 0 ? Success : AFF;
    }
    return Success;
  }
}
