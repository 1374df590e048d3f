import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { novaTime } from './aggregate-store.js';
import { type ComputeService, computeServices, internalZoneName } from './compute-services.js';
import { beginCompute, callerOf } from './resource-common.js';

interface Zone {
  readonly name: string;
  readonly services: ComputeService[];
}

/** Compute zones in order of first appearance; a zone is available when one of its hosts is enabled. */
function zonesOf(all: readonly ComputeService[]): { available: Zone[]; unavailable: Zone[] } {
  const zones = new Map<string, ComputeService[]>();
  for (const s of all) {
    if (s.hostId === undefined) continue;
    const list = zones.get(s.zone) ?? [];
    list.push(s);
    zones.set(s.zone, list);
  }
  const available: Zone[] = [];
  const unavailable: Zone[] = [];
  for (const [name, services] of zones)
    (services.some((s) => s.enabled) ? available : unavailable).push({ name, services });
  return { available, unavailable };
}

function hostsOf(services: readonly ComputeService[], now: number): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const s of services) {
    out[s.host] ??= {};
    out[s.host]![s.binary] = { available: s.up, active: s.enabled, updated_at: s.up ? novaTime(now) : null };
  }
  return out;
}

/**
 * `os-availability-zone`: the zones of the compute hosts (any caller), and with `/detail` their
 * hosts' services and the `internal` zone of the control plane (admin).
 */
export function availabilityZoneRoutes(services: ApiServices): RouteSpec[] {
  return [
    route({
      method: 'GET',
      url: '/v2.1/os-availability-zone',
      service: 'compute',
      summary: 'List availability zones',
      rules: ['os_compute_api:os-availability-zone:list'],
      handler: async ({ request, reply, auth }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-availability-zone:list', callerOf(auth));
        const { available, unavailable } = zonesOf(await computeServices(services));
        return {
          status: 200,
          body: {
            availabilityZoneInfo: [
              ...available.map((z) => ({ zoneName: z.name, zoneState: { available: true }, hosts: null })),
              ...unavailable.map((z) => ({ zoneName: z.name, zoneState: { available: false }, hosts: null })),
            ],
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-availability-zone/detail',
      service: 'compute',
      summary: 'List availability zones with their hosts and services',
      rules: ['os_compute_api:os-availability-zone:detail'],
      handler: async ({ request, reply, auth }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-availability-zone:detail', callerOf(auth));
        const all = await computeServices(services);
        const { available, unavailable } = zonesOf(all);
        const now = Date.now();
        const internal = all.filter((s) => s.hostId === undefined);
        return {
          status: 200,
          body: {
            availabilityZoneInfo: [
              { zoneName: internalZoneName, zoneState: { available: true }, hosts: hostsOf(internal, now) },
              ...available.map((z) => ({
                zoneName: z.name,
                zoneState: { available: true },
                hosts: hostsOf(z.services, now),
              })),
              ...unavailable.map((z) => ({ zoneName: z.name, zoneState: { available: false }, hosts: null })),
            ],
          },
        };
      },
    }),
  ];
}
