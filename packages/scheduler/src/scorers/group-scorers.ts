import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { ScorePlugin } from '../plugin.js';

/** Soft affinity: more members of the request's `soft-affinity` group on a host score higher. */
export class SoftAffinityScorer implements ScorePlugin {
  readonly name = 'SoftAffinity';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.request.group?.policy === 'soft-affinity';
  }
  score(ctx: PlacementContext, host: HostState): number {
    return ctx.request.group?.policy === 'soft-affinity' ? ctx.groupCount(host.id) : 0;
  }
}

/** Soft anti-affinity: more members of the request's `soft-anti-affinity` group on a host score lower. */
export class SoftAntiAffinityScorer implements ScorePlugin {
  readonly name = 'SoftAntiAffinity';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.request.group?.policy === 'soft-anti-affinity';
  }
  score(ctx: PlacementContext, host: HostState): number {
    return ctx.request.group?.policy === 'soft-anti-affinity' ? -ctx.groupCount(host.id) : 0;
  }
}
