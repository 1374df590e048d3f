import { z } from 'zod';
import { badRequest, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { AggregateStore } from './aggregate-store.js';
import { uuidPattern } from './compute-nodes.js';
import { type ComputeService, computeServices, serviceView } from './compute-services.js';
import { novaId } from './hypervisor-view.js';
import { beginCompute, callerOf, resourceDb } from './resource-common.js';

const reason = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');
const hostText = z.string().min(1).max(255);
const boolField = z.union([
  z.boolean(),
  z.enum(['true', 'false', 'True', 'False']).transform((s) => s.toLowerCase() === 'true'),
]);

const listQuery = z.object({ host: z.string().max(255).optional(), binary: z.string().max(255).optional() });
const idParams = z.object({ id: z.string().min(1).max(255) });
/** `PUT /os-services/{id}` from 2.53. */
const updateBody = z
  .strictObject({
    status: z.enum(['enabled', 'disabled']).optional(),
    disabled_reason: reason.optional(),
    forced_down: boolField.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'must set status or forced_down');
/** The old `PUT /os-services/enable|disable|disable-log-reason|force-down` (below 2.53). */
const legacyBody = z.strictObject({
  host: hostText,
  binary: hostText,
  disabled_reason: reason.optional(),
  forced_down: boolField.optional(),
});

/** `os-services`: list (host and binary filters), update (enable, disable, force down), delete; admin only. */
export function serviceRoutes(services: ApiServices): RouteSpec[] {
  const aggregates = new AggregateStore(resourceDb(services));

  function findById(all: readonly ComputeService[], id: string, v: Microversion): ComputeService {
    if (atLeast(v, 53) && !uuidPattern.test(id)) throw badRequest(`Invalid uuid ${id}`, 'id');
    const s = all.find((x) => String(novaId(x.ids, v)) === id.toLowerCase());
    if (!s) throw notFound(`Service ${id} could not be found.`);
    return s;
  }

  async function change(
    s: ComputeService,
    status: { enabled?: boolean; disabledReason?: string; up?: boolean },
  ) {
    if (s.hostId === undefined)
      throw badRequest(
        `Updating a ${s.binary} service is not supported; only nova-compute services can be.`,
        'id',
      );
    await services.engine.hosts.setStatus(s.hostId, status);
  }

  async function legacy(action: string, body: z.output<typeof legacyBody>, v: Microversion) {
    const all = await computeServices(services);
    const s = all.find((x) => x.host === body.host && x.binary === body.binary);
    if (!s) throw notFound(`Host '${body.host}' is not mapped to any cell`);
    switch (action) {
      case 'enable':
        await change(s, { enabled: true });
        return { host: s.host, binary: s.binary, status: 'enabled' };
      case 'disable':
        await change(s, { enabled: false });
        return { host: s.host, binary: s.binary, status: 'disabled' };
      case 'disable-log-reason':
        if (body.disabled_reason === undefined)
          throw badRequest('Missing disabled reason field', 'body.disabled_reason');
        await change(s, { enabled: false, disabledReason: body.disabled_reason });
        return { host: s.host, binary: s.binary, status: 'disabled', disabled_reason: body.disabled_reason };
      case 'force-down':
        if (!atLeast(v, 11)) throw notFound('The resource could not be found.');
        if (body.forced_down === undefined) throw badRequest('Missing forced_down field', 'body.forced_down');
        await change(s, { up: !body.forced_down });
        return { host: s.host, binary: s.binary, forced_down: body.forced_down };
      default:
        throw notFound('The resource could not be found.');
    }
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-services',
      service: 'compute',
      summary: 'List compute services',
      rules: ['os_compute_api:os-services:list'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-services:list', callerOf(auth));
        // The SDK sends the literal text `None` for an absent filter.
        const given = (x: string | undefined) => (x === undefined || x === 'None' ? undefined : x);
        const host = given(query.host);
        const binary = given(query.binary);
        const all = (await computeServices(services)).filter(
          (s) => (host === undefined || s.host === host) && (binary === undefined || s.binary === binary),
        );
        const now = Date.now();
        return { status: 200, body: { services: all.map((s) => serviceView(s, v, now)) } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/os-services/:id',
      service: 'compute',
      summary: 'Enable, disable or force down a compute service',
      rules: ['os_compute_api:os-services:update'],
      params: idParams,
      body: z.unknown(),
      handler: async ({ request, reply, auth, params, body }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-services:update', callerOf(auth));
        if (!atLeast(v, 53)) {
          const parsed = legacyBody.safeParse(body);
          if (!parsed.success) {
            const issue = parsed.error.issues[0];
            const path = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
            throw badRequest(
              `Invalid input for field/attribute ${path}: ${issue?.message ?? 'invalid'}`,
              path,
            );
          }
          return { status: 200, body: { service: await legacy(params.id, parsed.data, v) } };
        }
        const parsed = updateBody.safeParse(body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          const path = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
          throw badRequest(`Invalid input for field/attribute ${path}: ${issue?.message ?? 'invalid'}`, path);
        }
        const b = parsed.data;
        if (b.disabled_reason !== undefined && b.status !== 'disabled')
          throw badRequest(
            'Specifying a disabled_reason is only supported when the status is disabled.',
            'body.disabled_reason',
          );
        const s = findById(await computeServices(services), params.id, v);
        await change(s, {
          ...(b.status !== undefined ? { enabled: b.status === 'enabled' } : {}),
          ...(b.disabled_reason !== undefined ? { disabledReason: b.disabled_reason } : {}),
          ...(b.forced_down !== undefined ? { up: !b.forced_down } : {}),
        });
        const after = findById(await computeServices(services), params.id, v);
        return { status: 200, body: { service: serviceView(after, v) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/os-services/:id',
      service: 'compute',
      summary: 'Delete the compute service of a host without instances (the host leaves the engine)',
      rules: ['os_compute_api:os-services:delete'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        services.policy.authorize('os_compute_api:os-services:delete', callerOf(auth));
        const s = findById(await computeServices(services), params.id, v);
        if (s.hostId === undefined)
          throw badRequest(`The ${s.binary} service of Nova LFS cannot be deleted.`, 'id');
        if ((await services.engine.list({ hostId: s.hostId, limit: 1 })).length > 0)
          throw conflict(
            'Unable to delete compute service that is hosting instances. Migrate or delete the instances first.',
          );
        for (const a of await aggregates.list())
          if (a.hosts.includes(s.hostId)) await aggregates.removeHost(a.id, s.hostId, Date.now());
        await services.engine.removeHost(s.hostId);
        return { status: 204 };
      },
    }),
  ];
}
