import { z } from 'zod';
import { badRequest, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { beginServers, serverFor } from './server-access.js';
import { serverMetadata } from './server-create.js';

const params = z.object({ serverId: z.string().min(1).max(255) });
const keyParams = params.extend({ key: z.string().min(1).max(255) });
const metadataBody = z.object({ metadata: serverMetadata });
const metaBody = z.object({ meta: serverMetadata });

/** `/servers/{id}/metadata`: list, merge, replace, and one item's show, set and delete. */
export function serverMetadataRoutes(services: ApiServices): RouteSpec[] {
  const { engine } = services;

  async function load(
    request: Parameters<typeof beginServers>[1],
    reply: Parameters<typeof beginServers>[2],
    auth: Parameters<typeof beginServers>[3],
    id: string,
    action: string,
  ) {
    const rule = `os_compute_api:server-metadata:${action}`;
    const req = beginServers(services, request, reply, auth, rule, {});
    return serverFor(services, req.auth, id, rule);
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/metadata',
      service: 'compute',
      summary: 'List the metadata of a server',
      rules: ['os_compute_api:server-metadata:index'],
      params,
      handler: async ({ request, reply, auth, params: p }) => {
        const instance = await load(request, reply, auth, p.serverId, 'index');
        return { status: 200, body: { metadata: { ...instance.metadata } } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/servers/:serverId/metadata',
      service: 'compute',
      summary: 'Add or change metadata items of a server',
      rules: ['os_compute_api:server-metadata:create'],
      params,
      body: metadataBody,
      handler: async ({ request, reply, auth, params: p, body }) => {
        const instance = await load(request, reply, auth, p.serverId, 'create');
        const merged = { ...instance.metadata, ...body.metadata };
        if (Object.keys(merged).length > 128)
          throw badRequest('Quota exceeded for metadata items: at most 128', 'body.metadata');
        const updated = await engine.update(instance.id, { metadata: merged });
        return { status: 200, body: { metadata: { ...updated.metadata } } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/servers/:serverId/metadata',
      service: 'compute',
      summary: 'Replace the metadata of a server',
      rules: ['os_compute_api:server-metadata:update_all'],
      params,
      body: metadataBody,
      handler: async ({ request, reply, auth, params: p, body }) => {
        const instance = await load(request, reply, auth, p.serverId, 'update_all');
        const updated = await engine.update(instance.id, { metadata: body.metadata });
        return { status: 200, body: { metadata: { ...updated.metadata } } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/metadata/:key',
      service: 'compute',
      summary: 'Show one metadata item of a server',
      rules: ['os_compute_api:server-metadata:show'],
      params: keyParams,
      handler: async ({ request, reply, auth, params: p }) => {
        const instance = await load(request, reply, auth, p.serverId, 'show');
        if (!Object.hasOwn(instance.metadata, p.key)) throw notFound('Metadata item was not found');
        return { status: 200, body: { meta: { [p.key]: instance.metadata[p.key] } } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/servers/:serverId/metadata/:key',
      service: 'compute',
      summary: 'Set one metadata item of a server',
      rules: ['os_compute_api:server-metadata:update'],
      params: keyParams,
      body: metaBody,
      handler: async ({ request, reply, auth, params: p, body }) => {
        const entries = Object.entries(body.meta);
        if (entries.length !== 1) throw badRequest('Request body contains too many items', 'body.meta');
        if (entries[0]![0] !== p.key) throw badRequest('Request body and URI mismatch', 'body.meta');
        const instance = await load(request, reply, auth, p.serverId, 'update');
        const merged = { ...instance.metadata, [p.key]: entries[0]![1] };
        if (Object.keys(merged).length > 128)
          throw badRequest('Quota exceeded for metadata items: at most 128', 'body.meta');
        await engine.update(instance.id, { metadata: merged });
        return { status: 200, body: { meta: { [p.key]: entries[0]![1] } } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/servers/:serverId/metadata/:key',
      service: 'compute',
      summary: 'Delete one metadata item of a server',
      rules: ['os_compute_api:server-metadata:delete'],
      params: keyParams,
      handler: async ({ request, reply, auth, params: p }) => {
        const instance = await load(request, reply, auth, p.serverId, 'delete');
        if (!Object.hasOwn(instance.metadata, p.key)) throw notFound('Metadata item was not found');
        const rest = { ...instance.metadata };
        delete rest[p.key];
        await engine.update(instance.id, { metadata: rest });
        return { status: 204 };
      },
    }),
  ];
}
