import { z } from 'zod';
import { notFound } from '../../http/api-fault.js';
import type { ApiServices, CatalogNetwork } from '../../http/api-services.js';
import { type RouteAnswer, type RouteSpec, route } from '../../http/route.js';
import { policyDefaults } from '../../policy/policy-engine.js';
import { atLeast, formatMicroversion, type Microversion } from '../microversion.js';
import { beginServers } from './server-access.js';

const reader = 'rule:project_reader_or_admin';

/** Nova's default rules for the deprecated `os-networks` proxy. */
export const networkPolicies = policyDefaults({
  'os_compute_api:os-networks:list': [reader, 'List the networks (a proxy of the network service).'],
  'os_compute_api:os-networks:show': [reader, 'Show a network (a proxy of the network service).'],
});

/** Nova's view fields of a network (`network_dict`); the admin-only ones are left out. */
const fields = [
  'id',
  'cidr',
  'netmask',
  'gateway',
  'broadcast',
  'dns1',
  'dns2',
  'cidr_v6',
  'gateway_v6',
  'label',
  'netmask_v6',
] as const;

/** Dotted netmask and broadcast address of an IPv4 CIDR. */
function ipv4Of(cidr: string): { netmask: string; broadcast: string } | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const prefix = Number(m[5]);
  const addr = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const dotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return { netmask: dotted(mask), broadcast: dotted((addr | ~mask) >>> 0) };
}

/**
 * A network as Nova's proxy shows it: `id` and `label` (the name), and, unlike Nova over Neutron
 * (which leaves them null), the IPv4 subnet's `cidr`, `netmask`, `gateway` and `broadcast`, which
 * the catalog knows; the other fields are null.
 */
export function networkView(n: CatalogNetwork): Record<string, unknown> {
  const view: Record<string, unknown> = Object.fromEntries(fields.map((f) => [f, null]));
  const ip = ipv4Of(n.cidr);
  Object.assign(view, {
    id: n.id,
    label: n.name,
    cidr: n.cidr,
    gateway: n.gateway ?? null,
    netmask: ip?.netmask ?? null,
    broadcast: ip?.broadcast ?? null,
  });
  return view;
}

/** Nova's proxy APIs end at 2.35: from 2.36 the routes answer 404. */
function proxyVersion(v: Microversion): void {
  if (atLeast(v, 36)) throw notFound(`API version ${formatMicroversion(v)} is not supported on this method.`);
}

/**
 * Nova's deprecated `os-networks` proxy (2.1 to 2.35), read-only: the networks of the cloud's
 * network catalog (the NetworkAdapter's configured networks); an empty list without one.
 * `openstack server create --nic net-id=X` needs it when the catalog has no network endpoint:
 * OSC 6.0 then resolves X through `GET /os-networks/X`, falling back to `GET /os-networks`
 * matched on `label`. Creating, deleting and associating networks are gone in Nova (410) and are
 * not routed.
 */
export function networkRoutes(services: ApiServices): RouteSpec[] {
  services.policy.register(networkPolicies);
  const list = async (): Promise<readonly CatalogNetwork[]> =>
    services.network ? await services.network.listNetworks() : [];
  return [
    route({
      method: 'GET',
      url: '/v2.1/os-networks',
      service: 'compute',
      summary: 'List networks (deprecated proxy, up to 2.35)',
      rules: ['os_compute_api:os-networks:list'],
      handler: async ({ request, reply, auth }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:os-networks:list');
        proxyVersion(req.version);
        return { status: 200, body: { networks: (await list()).map(networkView) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-networks/:networkId',
      service: 'compute',
      summary: 'Show a network (deprecated proxy, up to 2.35)',
      rules: ['os_compute_api:os-networks:show'],
      params: z.object({ networkId: z.string().min(1).max(255) }),
      handler: async ({ request, reply, auth, params }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:os-networks:show');
        proxyVersion(req.version);
        const network = (await list()).find((n) => n.id === params.networkId);
        if (!network) throw notFound('Network not found');
        return { status: 200, body: { network: networkView(network) } };
      },
    }),
  ];
}
