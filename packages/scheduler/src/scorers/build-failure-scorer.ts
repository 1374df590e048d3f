import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { ScorePlugin } from '../plugin.js';

/** Hosts with recent build failures score lower (Nova's BuildFailureWeigher); failures older than `windowMs` are forgotten. */
export class BuildFailureScorer implements ScorePlugin {
  readonly name = 'BuildFailure';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.lastBuildFailureAt >= ctx.now - this.windowMs;
  }
  constructor(readonly windowMs = 10 * 60_000) {}
  score(ctx: PlacementContext, host: HostState): number {
    return -host.recentFailures(ctx.now, this.windowMs);
  }
}
