import type { HostState } from '../host-state.js';
import type { PlacementContext } from '../placement-context.js';
import type { FilterPlugin } from '../plugin.js';
import { type FilterStatus, Success, unschedulable } from '../status.js';

/** Reasons of {@link ImagePropertiesFilter}. */
export const ImagePropertiesReason = {
  Architecture: 'image architecture not supported',
  HypervisorType: 'image hypervisor type not supported',
  Capability: 'driver lacks a required capability',
} as const;
const ARCH = unschedulable(ImagePropertiesReason.Architecture);
const HV = unschedulable(ImagePropertiesReason.HypervisorType);
const CAP = unschedulable(ImagePropertiesReason.Capability);

/**
 * The image's `architecture` and `hypervisorType` properties must match the host (Nova's
 * ImagePropertiesFilter), and the driver must have every capability the flavor requires with
 * `capabilities:NAME=true` extra specs.
 */
export class ImagePropertiesFilter implements FilterPlugin {
  readonly name = 'ImageProperties';
  appliesTo(ctx: PlacementContext): boolean {
    const p = ctx.request.image.properties;
    return (
      p.architecture !== undefined || p.hypervisorType !== undefined || ctx.requiredCapabilities.length > 0
    );
  }
  filter(ctx: PlacementContext, host: HostState): FilterStatus {
    const p = ctx.request.image.properties;
    if (p.architecture !== undefined && p.architecture !== host.host.architecture) return ARCH;
    if (p.hypervisorType !== undefined && p.hypervisorType !== host.host.hypervisorType) return HV;
    for (const c of ctx.requiredCapabilities) if (!host.capabilities.has(c)) return CAP;
    return Success;
  }
}
