import { z } from 'zod';
import { ApiFault, badRequest, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { type ComputeNode, computeNodes, queryFlag, uuidPattern } from './compute-nodes.js';
import { hostUsage } from './host-usage.js';
import {
  hypervisorDetail,
  hypervisorServers,
  hypervisorStatistics,
  hypervisorSummary,
  novaId,
} from './hypervisor-view.js';
import { beginCompute, callerOf } from './resource-common.js';

const listQuery = z.object({
  limit: z.string().max(16).optional(),
  marker: z.string().max(255).optional(),
  hypervisor_hostname_pattern: z
    .string()
    .min(1)
    .max(255)
    .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters')
    .optional(),
  with_servers: z.string().max(16).optional(),
});
const idParams = z.object({ id: z.string().min(1).max(255) });
const showQuery = z.object({ with_servers: z.string().max(16).optional() });

/** Finds the node with Nova id `id` at `v`. @throws ApiFault 400 (not a uuid at >= 2.53), 404 */
function nodeById(nodes: readonly ComputeNode[], id: string, v: Microversion): ComputeNode {
  if (atLeast(v, 53) && !uuidPattern.test(id)) throw badRequest(`Invalid uuid ${id}`, 'id');
  const node = nodes.find((n) => String(novaId(n.hypervisor, v)) === id.toLowerCase());
  if (!node) throw notFound(`Hypervisor with ID '${id}' could not be found.`);
  return node;
}

function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text))
    throw badRequest(
      'Invalid input for field/attribute query.limit: must be a non-negative integer',
      'query.limit',
    );
  return Number(text);
}

/**
 * `os-hypervisors`: list, detail, show, uptime, statistics (below 2.88), search and servers
 * (below 2.53); admin only. Capacity comes from each host's inventory and usage from the flavors
 * of the instances placed on it.
 */
export function hypervisorRoutes(services: ApiServices): RouteSpec[] {
  const base = services.urls.compute;

  async function listed(
    v: Microversion,
    q: z.output<typeof listQuery>,
    path: string,
  ): Promise<{ page: ComputeNode[]; next?: string }> {
    let nodes = await computeNodes(services);
    const paging = atLeast(v, 33);
    const limit = paging ? limitOf(q.limit) : undefined;
    const marker = paging ? q.marker : undefined;
    if (atLeast(v, 53) && q.hypervisor_hostname_pattern !== undefined) {
      if (limit !== undefined || marker !== undefined)
        throw badRequest(
          'Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.',
          'query.hypervisor_hostname_pattern',
        );
      const pattern = q.hypervisor_hostname_pattern.toLowerCase();
      nodes = nodes.filter((n) => n.host.name.toLowerCase().includes(pattern));
      if (nodes.length === 0)
        throw notFound(`No hypervisor matching '${q.hypervisor_hostname_pattern}' could be found.`);
    }
    if (marker !== undefined) {
      const at = nodes.findIndex((n) => String(novaId(n.hypervisor, v)) === marker.toLowerCase());
      if (at < 0) throw new ApiFault(400, `marker [${marker}] not found`, { field: 'query.marker' });
      nodes = nodes.slice(at + 1);
    }
    if (limit === undefined) return { page: nodes };
    const page = nodes.slice(0, limit);
    if (nodes.length > limit && page.length > 0) {
      const last = novaId(page[page.length - 1]!.hypervisor, v);
      return { page, next: `${base}${path}?limit=${limit}&marker=${encodeURIComponent(String(last))}` };
    }
    return { page };
  }

  const withServers = (v: Microversion, flag: string | undefined) => atLeast(v, 53) && queryFlag(flag);
  const linked = (body: Record<string, unknown>, next: string | undefined) =>
    next ? { ...body, hypervisors_links: [{ rel: 'next', href: next }] } : body;

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors',
      service: 'compute',
      summary: 'List hypervisors',
      rules: ['os_compute_api:os-hypervisors:list'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-hypervisors:list', callerOf(auth));
        const { page, next } = await listed(v, query, '/os-hypervisors');
        const servers = withServers(v, query.with_servers);
        const hypervisors = [];
        for (const node of page) {
          const out = hypervisorSummary(node, v);
          if (servers) {
            const usage = await hostUsage(services.engine, node.host);
            if (usage.instances.length > 0) out.servers = hypervisorServers(usage);
          }
          hypervisors.push(out);
        }
        return { status: 200, body: linked({ hypervisors }, next) };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/detail',
      service: 'compute',
      summary: 'List hypervisors with details',
      rules: ['os_compute_api:os-hypervisors:list-detail'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-hypervisors:list-detail', callerOf(auth));
        const { page, next } = await listed(v, query, '/os-hypervisors/detail');
        const servers = withServers(v, query.with_servers);
        const hypervisors = [];
        for (const node of page)
          hypervisors.push(hypervisorDetail(node, await hostUsage(services.engine, node.host), v, servers));
        return { status: 200, body: linked({ hypervisors }, next) };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/statistics',
      service: 'compute',
      summary: 'Sum the capacity and usage of every hypervisor (below 2.88)',
      rules: ['os_compute_api:os-hypervisors:statistics'],
      handler: async ({ request, reply, auth }) => {
        const v = beginCompute(request, reply);
        if (atLeast(v, 88)) throw notFound('The resource could not be found.');
        services.policy.authorize('os_compute_api:os-hypervisors:statistics', callerOf(auth));
        const usages = [];
        for (const node of await computeNodes(services))
          usages.push(await hostUsage(services.engine, node.host));
        return { status: 200, body: { hypervisor_statistics: hypervisorStatistics(usages) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/:id',
      service: 'compute',
      summary: 'Show a hypervisor',
      rules: ['os_compute_api:os-hypervisors:show'],
      params: idParams,
      query: showQuery,
      handler: async ({ request, reply, auth, params, query }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-hypervisors:show', callerOf(auth));
        const node = nodeById(await computeNodes(services), params.id, v);
        const usage = await hostUsage(services.engine, node.host);
        return {
          status: 200,
          body: { hypervisor: hypervisorDetail(node, usage, v, withServers(v, query.with_servers)) },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/:id/uptime',
      service: 'compute',
      summary: 'Show a hypervisor’s uptime (501: the drivers report none)',
      rules: ['os_compute_api:os-hypervisors:uptime'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        if (atLeast(v, 88)) throw notFound('The resource could not be found.');
        services.policy.authorize('os_compute_api:os-hypervisors:uptime', callerOf(auth));
        nodeById(await computeNodes(services), params.id, v);
        throw new ApiFault(501, 'Virt driver does not implement host uptime function.');
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/:id/search',
      service: 'compute',
      summary: 'Find hypervisors whose hostname contains a text (below 2.53)',
      rules: ['os_compute_api:os-hypervisors:search'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        if (atLeast(v, 53)) throw notFound('The resource could not be found.');
        services.policy.authorize('os_compute_api:os-hypervisors:search', callerOf(auth));
        const pattern = params.id.toLowerCase();
        const nodes = (await computeNodes(services)).filter((n) =>
          n.host.name.toLowerCase().includes(pattern),
        );
        if (nodes.length === 0) throw notFound(`No hypervisor matching '${params.id}' could be found.`);
        return { status: 200, body: { hypervisors: nodes.map((n) => hypervisorSummary(n, v)) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-hypervisors/:id/servers',
      service: 'compute',
      summary: 'List the servers of the hypervisors whose hostname contains a text (below 2.53)',
      rules: ['os_compute_api:os-hypervisors:servers'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        if (atLeast(v, 53)) throw notFound('The resource could not be found.');
        services.policy.authorize('os_compute_api:os-hypervisors:servers', callerOf(auth));
        const pattern = params.id.toLowerCase();
        const nodes = (await computeNodes(services)).filter((n) =>
          n.host.name.toLowerCase().includes(pattern),
        );
        if (nodes.length === 0) throw notFound(`No hypervisor matching '${params.id}' could be found.`);
        const hypervisors = [];
        for (const node of nodes) {
          const out = hypervisorSummary(node, v);
          const usage = await hostUsage(services.engine, node.host);
          if (usage.instances.length > 0) out.servers = hypervisorServers(usage);
          hypervisors.push(out);
        }
        return { status: 200, body: { hypervisors } };
      },
    }),
  ];
}
