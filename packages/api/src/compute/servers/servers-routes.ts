import { ErrorCode, type Instance, type InstanceFilter, isNovaError } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault, badRequest } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast } from '../microversion.js';
import { descriptionText, intQuery, nameText } from '../resources/resource-common.js';
import { whenAccepted } from './action-acceptance.js';
import { beginServers, type ServerRequest, serverFor } from './server-access.js';
import type { ServerAttrs } from './server-attrs.js';
import { createServerBody, createServers } from './server-create.js';
import { vmStatesOfStatus } from './server-status.js';
import { serverLinks, serverSummary, serverView } from './server-view.js';

/** Nova's `max_limit`: the largest page of a list. */
const maxPage = 1000;

const truthy = (v: string | undefined) => v !== undefined && !/^(0|f|false|n|no|off)$/i.test(v.trim());

const listQuery = z.object({
  limit: intQuery.optional(),
  marker: z.string().max(255).optional(),
  name: z.string().max(255).optional(),
  status: z.string().max(32).optional(),
  host: z.string().max(255).optional(),
  'changes-since': z.string().max(64).optional(),
  all_tenants: z.string().max(16).optional(),
  tenant_id: z.string().max(255).optional(),
  project_id: z.string().max(255).optional(),
  user_id: z.string().max(255).optional(),
  flavor: z.string().max(255).optional(),
  image: z.string().max(255).optional(),
  availability_zone: z.string().max(255).optional(),
  deleted: z.string().max(16).optional(),
});

const idParams = z.object({ serverId: z.string().min(1).max(255) });

const updateBody = z.object({
  server: z.strictObject({
    name: nameText(255).optional(),
    description: descriptionText.optional(),
    accessIPv4: z.string().max(64).optional(),
    accessIPv6: z.string().max(64).optional(),
    'OS-DCF:diskConfig': z.enum(['AUTO', 'MANUAL']).optional(),
  }),
});

/** Characters that make Nova's `name` filter a regular expression rather than a plain text. */
const regexChars = /[\\^$.*+?()[\]{}|]/;

/** `/servers`: list, detail, show, create (one or many, hints, idempotency), update, delete. */
export function serverRoutes(services: ApiServices, attrs: ServerAttrs): RouteSpec[] {
  const base = services.urls.compute;

  async function listed(
    req: ServerRequest,
    q: z.output<typeof listQuery>,
    path: string,
  ): Promise<{ page: Instance[]; next?: string }> {
    const { auth } = req;
    const detailOrIndex = path === '/servers/detail' ? 'detail' : 'index';
    const allTenants = truthy(q.all_tenants);
    if (allTenants)
      services.policy.authorize(`os_compute_api:servers:${detailOrIndex}:get_all_tenants`, auth);
    const allFilters = services.policy.enforce('os_compute_api:servers:allow_all_filters', auth);
    if (truthy(q.deleted) && !allFilters) return { page: [] };
    const filter: { -readonly [K in keyof InstanceFilter]: InstanceFilter[K] } = {};
    if (!allTenants) {
      if (!auth.projectId) return { page: [] };
      filter.projectId = auth.projectId;
    } else if (q.tenant_id ?? q.project_id) {
      filter.projectId = (q.tenant_id ?? q.project_id)!;
    }
    if (q.status !== undefined) {
      const states = vmStatesOfStatus(q.status);
      if (!states) throw badRequest(`Invalid status value: ${q.status.slice(0, 32)}`, 'query.status');
      filter.status = states;
    }
    // host is an admin-only filter; others' is dropped, as Nova drops it
    if (q.host !== undefined && allFilters) filter.hostId = await hostIdOf(q.host);
    if (q['changes-since'] !== undefined) {
      const t = Date.parse(q['changes-since']);
      if (Number.isNaN(t)) throw badRequest('Invalid changes-since value', 'query.changes-since');
      filter.changesSince = t;
    }
    let regex: RegExp | undefined;
    if (q.name !== undefined && q.name !== '') {
      if (regexChars.test(q.name)) {
        try {
          regex = new RegExp(q.name, 'i');
        } catch {
          throw badRequest('Invalid name filter: not a regular expression', 'query.name');
        }
      } else {
        filter.name = q.name;
      }
    }
    const limit = Math.min(q.limit ?? maxPage, maxPage);
    const extra = (i: Instance) =>
      (regex === undefined || regex.test(i.name)) &&
      (q.user_id === undefined || i.userId === q.user_id) &&
      (q.flavor === undefined || i.flavor.id === q.flavor) &&
      (q.image === undefined || i.imageId === q.image) &&
      (q.availability_zone === undefined || i.availabilityZone === q.availability_zone);
    const filtered =
      regex !== undefined ||
      q.user_id !== undefined ||
      q.flavor !== undefined ||
      q.image !== undefined ||
      q.availability_zone !== undefined;
    let page: Instance[];
    try {
      if (!filtered) {
        page = await services.engine.list({ ...filter, limit, ...(q.marker ? { marker: q.marker } : {}) });
      } else {
        // filters the store does not index: page through the store's matches
        page = [];
        let marker = q.marker;
        for (;;) {
          const chunk = await services.engine.list({
            ...filter,
            limit: maxPage,
            ...(marker ? { marker } : {}),
          });
          for (const i of chunk) if (extra(i) && page.length < limit) page.push(i);
          if (chunk.length < maxPage || page.length >= limit) break;
          marker = chunk[chunk.length - 1]!.id;
        }
      }
    } catch (e) {
      if (isNovaError(e, ErrorCode.NotFound) || isNovaError(e, ErrorCode.Validation))
        throw new ApiFault(400, `marker [${q.marker}] not found`, { field: 'query.marker' });
      throw e;
    }
    if (page.length === limit && page.length > 0) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q))
        if (v !== undefined && k !== 'marker' && k !== 'limit') params.set(k, String(v));
      params.set('limit', String(limit));
      params.set('marker', page[page.length - 1]!.id);
      return { page, next: `${base}${path}?${params.toString()}` };
    }
    return { page };
  }

  async function hostIdOf(name: string): Promise<string> {
    const hosts = await services.engine.hosts.list();
    return hosts.find((h) => h.name === name || h.id === name)?.id ?? name;
  }

  async function views(req: ServerRequest, page: readonly Instance[]): Promise<Record<string, unknown>[]> {
    const ctx = await req.view();
    const rows = await attrs.many(page.map((i) => i.id));
    return page.map((i) => serverView(i, rows.get(i.id), ctx));
  }

  async function oneView(req: ServerRequest, instance: Instance): Promise<Record<string, unknown>> {
    const ctx = await req.view();
    const groups = atLeast(req.version, 71) ? await groupsOf(instance) : undefined;
    return serverView(instance, await attrs.one(instance.id), ctx, groups);
  }

  async function groupsOf(instance: Instance): Promise<string[]> {
    const groups = await services.engine.serverGroups.list(instance.projectId);
    return groups.filter((g) => g.members.includes(instance.id)).map((g) => g.id);
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/servers',
      service: 'compute',
      summary: 'List servers',
      rules: ['os_compute_api:servers:index'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:index');
        const { page, next } = await listed(req, query, '/servers');
        const body: Record<string, unknown> = { servers: page.map((i) => serverSummary(i, base)) };
        if (next) body.servers_links = [{ rel: 'next', href: next }];
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/detail',
      service: 'compute',
      summary: 'List servers with details',
      rules: ['os_compute_api:servers:detail'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:detail');
        const { page, next } = await listed(req, query, '/servers/detail');
        const body: Record<string, unknown> = { servers: await views(req, page) };
        if (next) body.servers_links = [{ rel: 'next', href: next }];
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId',
      service: 'compute',
      summary: 'Show a server',
      rules: ['os_compute_api:servers:show'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:show', {});
        const instance = await serverFor(services, req.auth, params.serverId, 'os_compute_api:servers:show');
        return { status: 200, body: { server: await oneView(req, instance) } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/servers',
      service: 'compute',
      summary: 'Create one or more servers',
      rules: ['os_compute_api:servers:create'],
      body: createServerBody,
      handler: async ({ request, reply, auth, body, requestId }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:create');
        const key = idempotencyKeyOf(request.headers['idempotency-key']);
        const created = await createServers(
          services,
          attrs,
          req.auth,
          req.version,
          body,
          key ?? requestId,
          (e) => request.log.warn({ err: e }, 'server build failed'),
        );
        const first = created.instances[0]!;
        const returnReservation = body.server.return_reservation_id;
        if (
          returnReservation === true ||
          (typeof returnReservation === 'string' && truthy(returnReservation))
        )
          return { status: 202, body: { reservation_id: created.reservationId } };
        return {
          status: 202,
          headers: { location: `${base}/servers/${first.id}` },
          body: {
            server: {
              id: first.id,
              links: serverLinks(base, first.id),
              'OS-DCF:diskConfig': 'MANUAL',
              security_groups: [{ name: 'default' }],
            },
          },
        };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/servers/:serverId',
      service: 'compute',
      summary: 'Rename a server or change its description',
      rules: ['os_compute_api:servers:update'],
      params: idParams,
      body: updateBody,
      handler: async ({ request, reply, auth, params, body }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:update', {});
        const s = body.server;
        if (s.description !== undefined && !atLeast(req.version, 19))
          throw badRequest(
            "Additional properties are not allowed ('description' was unexpected)",
            'body.server.description',
          );
        let instance = await serverFor(services, req.auth, params.serverId, 'os_compute_api:servers:update');
        if (s.name !== undefined && s.name !== instance.name)
          instance = await services.engine.update(instance.id, { name: s.name });
        if (s.description !== undefined) await attrs.setDescription(instance.id, s.description);
        return { status: 200, body: { server: await oneView(req, instance) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/servers/:serverId',
      service: 'compute',
      summary: 'Delete a server',
      rules: ['os_compute_api:servers:delete'],
      params: idParams,
      handler: async ({ request, reply, auth, params, requestId }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:servers:delete', {});
        const instance = await serverFor(
          services,
          req.auth,
          params.serverId,
          'os_compute_api:servers:delete',
        );
        const context = { userId: req.auth.userId, projectId: req.auth.projectId ?? undefined, requestId };
        await whenAccepted(
          services.engine,
          instance.id,
          requestId,
          async () => {
            await services.engine.delete(instance.id, context);
            await attrs.remove(instance.id);
          },
          request.log,
        );
        return { status: 204 };
      },
    }),
  ];
}

/** A client's `Idempotency-Key`: printable text of at most 255 characters. */
function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || key.length === 0 || key.length > 255 || /[\p{Cc}]/u.test(key))
    throw badRequest('Idempotency-Key must be 1-255 printable characters', 'header.idempotency-key');
  return key;
}
