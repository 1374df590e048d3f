import { z } from 'zod';
import { badRequest } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import type { Microversion } from '../microversion.js';
import {
  ApiQuotas,
  apiQuotaDefaults,
  type EngineQuotaKey,
  engineQuotaKeys,
  quotaKeys,
} from './quota-catalog.js';
import { beginCompute, callerOf, resourceDb } from './resource-common.js';

/**
 * A project id the engine never sees: its usage answers with the engine's default limits (the
 * engine's quota port exposes them no other way). PUT refuses it.
 */
const defaultsProbe = 'nova-lfs-quota-defaults';

const projectParams = z.object({
  projectId: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be a project id'),
});

/** A limit as Nova accepts it: an integer (or its text) >= -1, -1 meaning unlimited. */
const limitValue = z
  .union([z.int(), z.string().regex(/^\s*-?\d{1,10}\s*$/, 'must be an integer')])
  .transform((x) => Number(x))
  .pipe(
    z
      .int()
      .min(-1, 'must be -1 (unlimited) or more')
      .max(2 ** 31 - 1),
  );

/** Limits, usage and reservations of one project, per Nova quota key. */
export interface QuotaSnapshot {
  readonly limits: Record<string, number>;
  readonly inUse: Record<string, number>;
  readonly reserved: Record<string, number>;
}

/** The quota of a project, engine-enforced keys from the engine and the others from the API table. */
export async function quotaSnapshot(services: ApiServices, projectId: string): Promise<QuotaSnapshot> {
  const engine = await services.engine.quotas.get(projectId);
  const limits: Record<string, number> = await new ApiQuotas(resourceDb(services)).limits(projectId);
  const inUse: Record<string, number> = {};
  const reserved: Record<string, number> = {};
  for (const k of Object.keys(apiQuotaDefaults)) {
    inUse[k] = 0;
    reserved[k] = 0;
  }
  inUse.server_groups = (await services.engine.serverGroups.list(projectId)).length;
  for (const [key, name] of Object.entries(engineQuotaKeys)) {
    limits[key] = engine.limits[name];
    inUse[key] = engine.inUse[name];
    reserved[key] = engine.reserved[name];
  }
  return { limits, inUse, reserved };
}

/** The engine's default limits with Nova's defaults of the other keys. */
async function defaultLimits(services: ApiServices): Promise<Record<string, number>> {
  const engine = await services.engine.quotas.get(defaultsProbe);
  const out: Record<string, number> = { ...apiQuotaDefaults };
  for (const [key, name] of Object.entries(engineQuotaKeys)) out[key] = engine.limits[name];
  return out;
}

function pick(values: Record<string, number>, v: Microversion): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of quotaKeys(v)) out[k] = values[k] ?? -1;
  return out;
}

/**
 * `os-quota-sets`: show (a reader of the project, or an admin), defaults, detail (limit, in use,
 * reserved), update (admin; below current usage only with `force`) and delete (back to the
 * defaults). `instances`, `cores` and `ram` are the engine's limits; the other keys are kept by
 * the API and shown per microversion (network keys below 2.36, personality keys below 2.57).
 */
export function quotaSetRoutes(services: ApiServices): RouteSpec[] {
  const apiQuotas = new ApiQuotas(resourceDb(services));
  const show = (rule: string, auth: Parameters<typeof callerOf>[0], projectId: string) =>
    services.policy.authorize(`os_compute_api:os-quota-sets:${rule}`, callerOf(auth), {
      project_id: projectId,
    });

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-quota-sets/:projectId',
      service: 'compute',
      summary: 'Show a project’s quota',
      rules: ['os_compute_api:os-quota-sets:show'],
      params: projectParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        show('show', auth, params.projectId);
        const q = await quotaSnapshot(services, params.projectId);
        return { status: 200, body: { quota_set: { id: params.projectId, ...pick(q.limits, v) } } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-quota-sets/:projectId/defaults',
      service: 'compute',
      summary: 'Show the default quota',
      rules: ['os_compute_api:os-quota-sets:defaults'],
      params: projectParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        show('defaults', auth, params.projectId);
        return {
          status: 200,
          body: { quota_set: { id: params.projectId, ...pick(await defaultLimits(services), v) } },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-quota-sets/:projectId/detail',
      service: 'compute',
      summary: 'Show a project’s quota with usage',
      rules: ['os_compute_api:os-quota-sets:detail'],
      params: projectParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        show('detail', auth, params.projectId);
        const q = await quotaSnapshot(services, params.projectId);
        const out: Record<string, unknown> = { id: params.projectId };
        for (const k of quotaKeys(v))
          out[k] = { in_use: q.inUse[k] ?? 0, limit: q.limits[k] ?? -1, reserved: q.reserved[k] ?? 0 };
        return { status: 200, body: { quota_set: out } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/os-quota-sets/:projectId',
      service: 'compute',
      summary: 'Update a project’s quota',
      rules: ['os_compute_api:os-quota-sets:update'],
      params: projectParams,
      body: z.object({ quota_set: z.record(z.string().max(64), z.unknown()) }),
      handler: async ({ request, reply, auth, params, body }) => {
        const v = beginCompute(request, reply);
        show('update', auth, params.projectId);
        if (params.projectId === defaultsProbe)
          throw badRequest('This project id is reserved.', 'project_id');
        const allowed = new Set(quotaKeys(v));
        let force = false;
        const wanted: Record<string, number> = {};
        for (const [key, raw] of Object.entries(body.quota_set)) {
          const field = `body.quota_set.${key}`;
          if (key === 'force') {
            const f = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False'])]).safeParse(raw);
            if (!f.success)
              throw badRequest(`Invalid input for field/attribute ${field}: must be a boolean`, field);
            force = f.data === true || String(f.data).toLowerCase() === 'true';
            continue;
          }
          if (!allowed.has(key))
            throw badRequest(
              `Invalid input for field/attribute quota_set. Additional properties are not allowed ('${key}' was unexpected)`,
              field,
            );
          const parsed = limitValue.safeParse(raw);
          if (!parsed.success)
            throw badRequest(
              `Invalid input for field/attribute ${field}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
              field,
            );
          wanted[key] = parsed.data;
        }
        const current = await quotaSnapshot(services, params.projectId);
        if (!force) {
          for (const [key, limit] of Object.entries(wanted)) {
            const minimum = (current.inUse[key] ?? 0) + (current.reserved[key] ?? 0);
            if (limit !== -1 && limit < minimum)
              throw badRequest(
                `Quota limit ${limit} for ${key} must be greater than or equal to already used and reserved ${minimum}.`,
                `body.quota_set.${key}`,
              );
          }
        }
        const engineLimits: Record<string, number> = {};
        const apiLimits: Record<string, number> = {};
        for (const [key, limit] of Object.entries(wanted)) {
          if (Object.hasOwn(engineQuotaKeys, key))
            engineLimits[engineQuotaKeys[key as EngineQuotaKey]] = limit;
          else apiLimits[key] = limit;
        }
        if (Object.keys(engineLimits).length > 0)
          await services.engine.quotas.set(params.projectId, engineLimits);
        await apiQuotas.set(params.projectId, apiLimits);
        const after = await quotaSnapshot(services, params.projectId);
        return { status: 200, body: { quota_set: pick(after.limits, v) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/os-quota-sets/:projectId',
      service: 'compute',
      summary: 'Revert a project’s quota to the defaults',
      rules: ['os_compute_api:os-quota-sets:delete'],
      params: projectParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        show('delete', auth, params.projectId);
        if (params.projectId === defaultsProbe)
          throw badRequest('This project id is reserved.', 'project_id');
        const defaults = await services.engine.quotas.get(defaultsProbe);
        await services.engine.quotas.set(params.projectId, defaults.limits);
        await apiQuotas.clear(params.projectId);
        return { status: 202 };
      },
    }),
  ];
}
