import { z } from 'zod';
import { ApiFault, badRequest, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { FlavorAttrs } from './flavor-attrs.js';
import { visibleFlavor } from './flavors-routes.js';
import { beginCompute, callerOf, resourceDb } from './resource-common.js';

/** Nova's extra spec keys: letters, digits and `-_:. `, 1-255 characters. */
const specKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_:. -]+$/, 'must be letters, digits and -_:. only');
const specValue = z
  .union([z.string(), z.number(), z.boolean()])
  .transform((x) => String(x))
  .pipe(
    z
      .string()
      .max(255)
      .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters'),
  );
const specs = z
  .record(specKey, specValue)
  .refine((r) => Object.keys(r).length <= 128, 'at most 128 extra specs');

const flavorParams = z.object({ flavorId: z.string().min(1).max(255) });
const keyParams = z.object({ flavorId: z.string().min(1).max(255), key: specKey });

const tenantField = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'must be a project id');
const actionBody = z.union([
  z.strictObject({ addTenantAccess: z.strictObject({ tenant: tenantField }) }),
  z.strictObject({ removeTenantAccess: z.strictObject({ tenant: tenantField }) }),
]);

/** `os-flavor-access` (list, add, remove) and `os-extra_specs` (list, show, create, update, delete). */
export function flavorExtrasRoutes(services: ApiServices): RouteSpec[] {
  const attrs = new FlavorAttrs(resourceDb(services));
  const accessList = async (flavorId: string) => ({
    flavor_access: (await attrs.access(flavorId)).map((tenant_id) => ({ flavor_id: flavorId, tenant_id })),
  });
  return [
    route({
      method: 'GET',
      url: '/v2.1/flavors/:flavorId/os-flavor-access',
      service: 'compute',
      summary: 'List the projects that may use a private flavor',
      rules: ['os_compute_api:os-flavor-access'],
      params: flavorParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-access', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        if (f.isPublic) throw notFound('Access list not available for public flavors.');
        return { status: 200, body: await accessList(f.flavor.id) };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/flavors/:flavorId/action',
      service: 'compute',
      summary: 'Add or remove a project’s access to a private flavor',
      rules: [
        'os_compute_api:os-flavor-access:add_tenant_access',
        'os_compute_api:os-flavor-access:remove_tenant_access',
      ],
      params: flavorParams,
      body: actionBody,
      handler: async ({ request, reply, auth, params, body }) => {
        beginCompute(request, reply);
        const caller = callerOf(auth);
        const add = 'addTenantAccess' in body;
        services.policy.authorize(
          add
            ? 'os_compute_api:os-flavor-access:add_tenant_access'
            : 'os_compute_api:os-flavor-access:remove_tenant_access',
          caller,
        );
        const f = await visibleFlavor(services, attrs, params.flavorId, caller);
        if (f.isPublic) throw conflict('Can not add access to a public flavor.');
        if (add) {
          const tenant = body.addTenantAccess.tenant;
          if (!(await attrs.grant(f.flavor.id, tenant)))
            throw conflict(
              `Flavor access already exists for flavor ${f.flavor.id} and project ${tenant} combination.`,
            );
        } else {
          const tenant = (body as { removeTenantAccess: { tenant: string } }).removeTenantAccess.tenant;
          if (!(await attrs.revoke(f.flavor.id, tenant)))
            throw notFound(`Flavor access not found for ${f.flavor.id} / ${tenant} combination.`);
        }
        return { status: 200, body: await accessList(f.flavor.id) };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/flavors/:flavorId/os-extra_specs',
      service: 'compute',
      summary: 'List a flavor’s extra specs',
      rules: ['os_compute_api:os-flavor-extra-specs:index'],
      params: flavorParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-extra-specs:index', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        return { status: 200, body: { extra_specs: { ...f.flavor.extraSpecs } } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/flavors/:flavorId/os-extra_specs/:key',
      service: 'compute',
      summary: 'Show one extra spec',
      rules: ['os_compute_api:os-flavor-extra-specs:show'],
      params: keyParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-extra-specs:show', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        const value = Object.hasOwn(f.flavor.extraSpecs, params.key)
          ? f.flavor.extraSpecs[params.key]
          : undefined;
        if (value === undefined)
          throw notFound(`Flavor ${f.flavor.id} has no extra specs with key ${params.key}.`);
        return { status: 200, body: { [params.key]: value } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/flavors/:flavorId/os-extra_specs',
      service: 'compute',
      summary: 'Create or merge extra specs',
      rules: ['os_compute_api:os-flavor-extra-specs:create'],
      params: flavorParams,
      body: z.object({ extra_specs: specs }),
      handler: async ({ request, reply, auth, params, body }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-extra-specs:create', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        const next = await services.engine.flavors.setExtraSpecs(f.flavor.id, {
          ...f.flavor.extraSpecs,
          ...body.extra_specs,
        });
        return { status: 200, body: { extra_specs: { ...next.extraSpecs } } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/flavors/:flavorId/os-extra_specs/:key',
      service: 'compute',
      summary: 'Update one extra spec',
      rules: ['os_compute_api:os-flavor-extra-specs:update'],
      params: keyParams,
      body: z.record(specKey, specValue),
      handler: async ({ request, reply, auth, params, body }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-extra-specs:update', callerOf(auth));
        const keys = Object.keys(body);
        if (keys.length !== 1) throw badRequest('Request body contains too many items', 'body');
        if (keys[0] !== params.key) throw badRequest('Request body and URI mismatch', 'body');
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        await services.engine.flavors.setExtraSpecs(f.flavor.id, {
          ...f.flavor.extraSpecs,
          [params.key]: body[params.key]!,
        });
        return { status: 200, body: { [params.key]: body[params.key] } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/flavors/:flavorId/os-extra_specs/:key',
      service: 'compute',
      summary: 'Delete one extra spec',
      rules: ['os_compute_api:os-flavor-extra-specs:delete'],
      params: keyParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-flavor-extra-specs:delete', callerOf(auth));
        const f = await visibleFlavor(services, attrs, params.flavorId, callerOf(auth));
        if (!Object.hasOwn(f.flavor.extraSpecs, params.key))
          throw new ApiFault(404, `Flavor ${f.flavor.id} has no extra specs with key ${params.key}.`);
        const next = { ...f.flavor.extraSpecs };
        delete next[params.key];
        await services.engine.flavors.setExtraSpecs(f.flavor.id, next);
        return { status: 200 };
      },
    }),
  ];
}
