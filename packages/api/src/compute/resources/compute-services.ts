import type { ApiServices } from '../../http/api-services.js';
import { atLeast, type Microversion } from '../microversion.js';
import { novaTime } from './aggregate-store.js';
import { computeNodes } from './compute-nodes.js';
import { HostIds, type NovaIds, serviceKey } from './host-ids.js';
import { novaId } from './hypervisor-view.js';
import { resourceDb } from './resource-common.js';

/** The host Nova LFS's control plane (scheduler, conductor: the engine itself) shows as. */
export const controlPlaneHost = 'nova-lfs';
/** The zone Nova shows its control-plane services in. */
export const internalZoneName = 'internal';
/** The control-plane binaries Nova lists beside the computes. */
const controlPlaneBinaries = ['nova-conductor', 'nova-scheduler'] as const;

/** One Nova service: a host's `nova-compute` or a control-plane service. */
export interface ComputeService {
  readonly ids: NovaIds;
  readonly binary: string;
  readonly host: string;
  readonly zone: string;
  readonly enabled: boolean;
  readonly up: boolean;
  readonly disabledReason: string | null;
  /** The engine host behind a `nova-compute` service; undefined for the control plane. */
  readonly hostId?: string;
}

/** The control-plane services, then one `nova-compute` per engine host (Nova's order). */
export async function computeServices(services: ApiServices): Promise<ComputeService[]> {
  const keys = controlPlaneBinaries.map((b) => serviceKey(b, controlPlaneHost));
  const ids = await new HostIds(resourceDb(services)).ensure(keys);
  const out: ComputeService[] = controlPlaneBinaries.map((binary, i) => ({
    ids: ids.get(keys[i]!)!,
    binary,
    host: controlPlaneHost,
    zone: internalZoneName,
    enabled: true,
    up: true,
    disabledReason: null,
  }));
  for (const node of await computeNodes(services))
    out.push({
      ids: node.service,
      binary: 'nova-compute',
      host: node.host.id,
      zone: node.host.availabilityZone,
      enabled: node.host.enabled,
      up: node.host.up,
      disabledReason: node.host.disabledReason,
      hostId: node.host.id,
    });
  return out;
}

/**
 * A service as Nova shows it at `v`: `forced_down` from 2.11 (a host marked down by an operator:
 * the engine keeps one liveness flag), uuid ids from 2.53. `updated_at` is the time of the
 * answer for a service that is up (the engine sees its hosts live; there is no heartbeat row).
 */
export function serviceView(s: ComputeService, v: Microversion, now = Date.now()): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: novaId(s.ids, v),
    binary: s.binary,
    host: s.host,
    zone: s.zone,
    status: s.enabled ? 'enabled' : 'disabled',
    state: s.up ? 'up' : 'down',
    updated_at: s.up ? novaTime(now) : null,
    disabled_reason: s.disabledReason,
  };
  if (atLeast(v, 11)) out.forced_down = !s.up;
  return out;
}
