import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ApiFault, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { isAdmin } from '../../http/auth-context.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast } from '../microversion.js';
import { type ApiFlavor, FlavorAttrs } from './flavor-attrs.js';
import { flavorSummary, flavorView } from './flavor-view.js';
import { beginCompute, callerOf, intQuery, nameText, resourceDb } from './resource-common.js';

const intParam = (min: number, max: number) =>
  z
    .union([z.int(), z.string().regex(/^\s*\d+\s*$/, 'must be an integer')])
    .transform((x) => Number(x))
    .pipe(z.int().min(min).max(max));

const flavorIdText = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits and ._- starting with a letter or digit');

const createBody = z.object({
  flavor: z.object({
    name: nameText(255),
    id: z
      .union([flavorIdText, z.int().min(0).transform(String)])
      .nullable()
      .optional(),
    ram: intParam(1, 2 ** 31 - 1),
    vcpus: intParam(1, 4096),
    disk: intParam(0, 2 ** 31 - 1),
    'OS-FLV-EXT-DATA:ephemeral': intParam(0, 2 ** 31 - 1).optional(),
    swap: z.union([intParam(0, 2 ** 31 - 1), z.literal('')]).optional(),
    rxtx_factor: z
      .union([z.number(), z.string().regex(/^\d+(\.\d+)?$/)])
      .transform(Number)
      .pipe(z.number().gt(0).max(3.4e38))
      .optional(),
    'os-flavor-access:is_public': z
      .union([z.boolean(), z.enum(['true', 'false', 'True', 'False'])])
      .transform((b) => b === true || b === 'true' || b === 'True')
      .optional(),
    description: z
      .string()
      .max(65535)
      .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
      .nullable()
      .optional(),
  }),
});

const listQuery = z.object({
  is_public: z.string().max(16).optional(),
  minRam: intQuery.optional(),
  minDisk: intQuery.optional(),
  limit: intQuery.optional(),
  marker: z.string().max(255).optional(),
  sort_key: z.string().max(64).optional(),
  sort_dir: z.enum(['asc', 'desc']).optional(),
});

const idParams = z.object({ flavorId: z.string().min(1).max(255) });

/** Loads a flavor the caller may see, or 404 in Nova's words. */
export async function visibleFlavor(
  services: ApiServices,
  attrs: FlavorAttrs,
  flavorId: string,
  auth: Parameters<FlavorAttrs['visible']>[1],
): Promise<ApiFlavor> {
  const flavor = await services.engine.flavors.get(flavorId);
  const f = flavor ? await attrs.one(flavor) : undefined;
  if (!f || !(await attrs.visible(f, auth))) throw notFound(`Flavor ${flavorId} could not be found.`);
  return f;
}

/** `/flavors`: list, detail (is_public, minRam, minDisk, paging), show, create, delete. */
export function flavorRoutes(services: ApiServices): RouteSpec[] {
  const attrs = new FlavorAttrs(resourceDb(services));
  const base = services.urls.compute;

  async function listed(
    auth: ReturnType<typeof callerOf>,
    q: z.output<typeof listQuery>,
    path: string,
  ): Promise<{ page: ApiFlavor[]; next?: string }> {
    const admin = isAdmin(auth);
    const all = await attrs.withAttrs(await services.engine.flavors.list());
    const mode = (q.is_public ?? 'true').toLowerCase();
    const access = await attrs.accessible(auth.projectId);
    let rows = all.filter((f) => {
      if (!admin) return f.isPublic || access.has(f.flavor.id);
      if (mode === 'none') return true;
      if (/^(0|f|false|n|no|off)$/.test(mode)) return !f.isPublic;
      return f.isPublic;
    });
    if (q.minRam !== undefined) rows = rows.filter((f) => f.flavor.ramMb >= q.minRam!);
    if (q.minDisk !== undefined) rows = rows.filter((f) => f.flavor.diskGb >= q.minDisk!);
    rows.sort((a, b) => (a.flavor.id < b.flavor.id ? -1 : a.flavor.id > b.flavor.id ? 1 : 0));
    if (q.sort_dir === 'desc') rows.reverse();
    if (q.marker !== undefined) {
      const at = rows.findIndex((f) => f.flavor.id === q.marker);
      if (at < 0) throw new ApiFault(400, `marker [${q.marker}] not found`, { field: 'query.marker' });
      rows = rows.slice(at + 1);
    }
    const limit = Math.min(q.limit ?? 1000, 1000);
    const page = rows.slice(0, limit);
    if (q.limit !== undefined && rows.length > limit && page.length > 0) {
      const params = new URLSearchParams();
      if (q.is_public !== undefined) params.set('is_public', q.is_public);
      params.set('limit', String(limit));
      params.set('marker', page[page.length - 1]!.flavor.id);
      return { page, next: `${base}${path}?${params.toString()}` };
    }
    return { page };
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/flavors',
      service: 'compute',
      summary: 'List flavors',
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        const { page, next } = await listed(callerOf(auth), query, '/flavors');
        const body: Record<string, unknown> = { flavors: page.map((f) => flavorSummary(f, v, base)) };
        if (next) body.flavors_links = [{ rel: 'next', href: next }];
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/flavors/detail',
      service: 'compute',
      summary: 'List flavors with details',
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        const { page, next } = await listed(callerOf(auth), query, '/flavors/detail');
        const body: Record<string, unknown> = { flavors: page.map((f) => flavorView(f, v, base)) };
        if (next) body.flavors_links = [{ rel: 'next', href: next }];
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/flavors/:flavorId',
      service: 'compute',
      summary: 'Show a flavor',
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        return { status: 200, body: { flavor: flavorView(f, v, base) } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/flavors',
      service: 'compute',
      summary: 'Create a flavor',
      rules: ['os_compute_api:os-flavor-manage:create'],
      body: createBody,
      handler: async ({ request, reply, auth, body }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-manage:create', callerOf(auth));
        const b = body.flavor;
        if (b.description !== undefined && b.description !== null && !atLeast(v, 55))
          throw new ApiFault(
            400,
            "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)",
            { field: 'body.flavor.description' },
          );
        const id = b.id ?? randomUUID();
        const existing = await services.engine.flavors.list();
        if (existing.some((f) => f.name === b.name))
          throw conflict(`Flavor with name ${b.name} already exists.`);
        if (existing.some((f) => f.id === id)) throw conflict(`Flavor with ID ${id} already exists.`);
        const flavor = await services.engine.flavors.create({
          id,
          name: b.name,
          vcpus: b.vcpus,
          ramMb: b.ram,
          diskGb: b.disk,
        });
        await attrs.save({
          flavor_id: id,
          description: b.description ?? null,
          is_public: b['os-flavor-access:is_public'] === false ? 0 : 1,
          swap: b.swap === '' || b.swap === undefined ? 0 : b.swap,
          ephemeral: b['OS-FLV-EXT-DATA:ephemeral'] ?? 0,
          rxtx_factor: b.rxtx_factor ?? 1,
          disabled: 0,
        });
        return { status: 200, body: { flavor: flavorView(await attrs.one(flavor), v, base) } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/flavors/:flavorId',
      service: 'compute',
      summary: 'Update a flavor’s description (>= 2.55)',
      rules: ['os_compute_api:os-flavor-manage:update'],
      params: idParams,
      body: z.object({
        flavor: z.object({
          description: z
            .string()
            .max(65535)
            .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
            .nullable(),
        }),
      }),
      handler: async ({ request, reply, auth, params, body }) => {
        const v = beginCompute(request, reply);
        if (!atLeast(v, 55)) throw notFound('The resource could not be found.');
        services.policy.authorize('os_compute_api:os-flavor-manage:update', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        await attrs.save({
          flavor_id: f.flavor.id,
          description: body.flavor.description,
          is_public: f.isPublic ? 1 : 0,
          swap: f.swap,
          ephemeral: f.ephemeral,
          rxtx_factor: f.rxtxFactor,
          disabled: f.disabled ? 1 : 0,
        });
        return { status: 200, body: { flavor: flavorView(await attrs.one(f.flavor), v, base) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/flavors/:flavorId',
      service: 'compute',
      summary: 'Delete a flavor',
      rules: ['os_compute_api:os-flavor-manage:delete'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-manage:delete', callerOf(auth));
        const flavor = await services.engine.flavors.get(params.flavorId);
        if (!flavor) throw notFound(`Flavor ${params.flavorId} could not be found.`);
        await services.engine.flavors.delete(flavor.id);
        await attrs.forget(flavor.id);
        return { status: 202 };
      },
    }),
  ];
}
