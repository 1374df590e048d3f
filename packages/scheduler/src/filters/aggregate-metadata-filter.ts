import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link AggregateMetadataFilter}. */
export const AggregateMetadataReason = { Mismatch: 'aggregate metadata does not match flavor' } as const;
const MISMATCH = unschedulable(AggregateMetadataReason.Mismatch);

/**
 * Flavor extra specs `aggregate_instance_extra_specs:KEY=VALUE` must be matched by the metadata of
 * one of the host's aggregates (Nova's AggregateInstanceExtraSpecsFilter). `VALUE` may list
 * alternatives as `<or> a <or> b`.
 */
export class AggregateMetadataFilter implements FilterPlugin {
  readonly name = 'AggregateMetadata';
  appliesTo(ctx: PlacementContext): boolean {
    return ctx.aggregateSpecs.length > 0;
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    if (ctx.aggregateSpecs.length === 0) return Success;
    for (const [key, wanted] of ctx.aggregateSpecs) {
      const options = wanted.startsWith('<or>')
        ? wanted
            .split('<or>')
            .map((s) => s.trim())
            .filter(Boolean)
        : [wanted];
      const ok = host.host.aggregates.some((a) => {
        const v = a.metadata[key];
        return v?.split(',').some((x) => options.includes(x.trim()));
      });
      if (!ok) return MISMATCH;
    }
    return Success;
  }
}
