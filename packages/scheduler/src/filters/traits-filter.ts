import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link TraitsFilter}. */
export const TraitsReason = {
  MissingRequired: 'missing a required trait',
  HasForbidden: 'has a forbidden trait',
} as const;
const MISSING = unschedulable(TraitsReason.MissingRequired);
const FORBIDDEN = unschedulable(TraitsReason.HasForbidden);

/** Flavor extra specs `trait:NAME=required|forbidden` against the host's traits (Placement's). */
export class TraitsFilter implements FilterPlugin {
  readonly name = 'Traits';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.requiredTraits.length + ctx.forbiddenTraits.length > 0;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    for (const t of ctx.requiredTraits) if (!host.traits.has(t)) return MISSING;
    for (const t of ctx.forbiddenTraits) if (host.traits.has(t)) return FORBIDDEN;
    return Success;
  }
}
