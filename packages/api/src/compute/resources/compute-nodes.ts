import type { Host } from '@nova-lfs/core';
import type { ApiServices } from '../../http/api-services.js';
import { HostIds, hypervisorKey, type NovaIds, serviceKey } from './host-ids.js';
import { resourceDb } from './resource-common.js';

/** A host with the ids Nova shows for its compute node (hypervisor) and its `nova-compute` service. */
export interface ComputeNode {
  readonly host: Host;
  readonly hypervisor: NovaIds;
  readonly service: NovaIds;
}

/** The hosts of the engine as Nova compute nodes, ordered by hypervisor id (Nova's order). */
export async function computeNodes(services: ApiServices): Promise<ComputeNode[]> {
  const hosts = await services.engine.hosts.list();
  const ids = await new HostIds(resourceDb(services)).ensure(
    hosts.flatMap((h) => [hypervisorKey(h.id), serviceKey('nova-compute', h.id)]),
  );
  return hosts
    .map((host) => ({
      host,
      hypervisor: ids.get(hypervisorKey(host.id))!,
      service: ids.get(serviceKey('nova-compute', host.id))!,
    }))
    .sort((a, b) => a.hypervisor.num - b.hypervisor.num);
}

/** Nova's shape of a uuid (any case, with dashes). */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a query flag is on as oslo's `bool_from_string` reads it (`true`, `1`, `yes`, `on`...). */
export function queryFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|t|true|on|y|yes)$/i.test(value.trim());
}
