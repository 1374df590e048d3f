import { z } from 'zod';
import { badRequest, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { applyAggregates } from './aggregate-placement.js';
import { AggregateStore, type ApiAggregate } from './aggregate-store.js';
import { beginCompute, callerOf, nameText, resourceDb } from './resource-common.js';

/** The zone Nova keeps for its control-plane services; no aggregate may use it. */
export const internalZone = 'internal';

const zoneName = nameText(255).refine((s) => !s.includes(':'), "must not contain ':'");
const metadataKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-zA-Z0-9-_:. ]+$/, 'must be letters, digits and -_:. only');
const metadataValue = z
  .string()
  .max(255)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');
const hostField = z.strictObject({ host: z.string().min(1).max(255) });

const createBody = z.object({
  aggregate: z.strictObject({ name: nameText(255), availability_zone: zoneName.nullable().optional() }),
});
const updateBody = z.object({
  aggregate: z
    .strictObject({ name: nameText(255).optional(), availability_zone: zoneName.nullable().optional() })
    .refine((a) => Object.keys(a).length > 0, 'must set name or availability_zone'),
});
const actionBody = z.union([
  z.strictObject({ add_host: hostField }),
  z.strictObject({ remove_host: hostField }),
  z.strictObject({
    set_metadata: z.strictObject({
      metadata: z
        .record(metadataKey, metadataValue.nullable())
        .refine((r) => Object.keys(r).length <= 128, 'at most 128 metadata items'),
    }),
  }),
]);
const idParams = z.object({ id: z.string().regex(/^\d{1,9}$/, 'must be an aggregate id') });

/** An aggregate as Nova shows it at `v` (`uuid` from 2.41). */
export function aggregateView(a: ApiAggregate, v: Microversion): Record<string, unknown> {
  const out: Record<string, unknown> = {
    availability_zone: a.availabilityZone,
    created_at: a.createdAt,
    deleted: false,
    deleted_at: null,
    hosts: [...a.hosts],
    id: a.id,
    metadata: { ...a.metadata },
    name: a.name,
    updated_at: a.updatedAt,
  };
  if (atLeast(v, 41)) out.uuid = a.uuid;
  return out;
}

/**
 * `os-aggregates`: list, show, create, update, delete and the `add_host`, `remove_host` and
 * `set_metadata` actions; admin only. Every change is written through to the engine's hosts
 * (aggregates with their metadata, and the availability zone), so scheduling follows at once.
 */
export function aggregateRoutes(services: ApiServices): RouteSpec[] {
  const store = new AggregateStore(resourceDb(services));
  const now = () => Date.now();

  async function load(id: string): Promise<ApiAggregate> {
    const a = await store.get(Number(id));
    if (!a) throw notFound(`Aggregate ${id} could not be found.`);
    return a;
  }

  /** Refuses a zone change that would move hosts with instances (Nova's check) or the internal zone. */
  async function checkZoneChange(
    a: ApiAggregate,
    zone: string | null | undefined,
    field: string,
  ): Promise<void> {
    if (zone === undefined || zone === a.availabilityZone) return;
    if (zone === internalZone)
      throw badRequest('Aggregates cannot be created or updated with the internal availability zone.', field);
    for (const hostId of a.hosts) {
      if ((await services.engine.list({ hostId, limit: 1 })).length > 0)
        throw badRequest(
          `Cannot update the availability zone of aggregate ${a.id}: host ${hostId} has instances.`,
          field,
        );
    }
    await checkZoneConflicts(a, zone, a.hosts);
  }

  /** A host may be in one zone only: refuse when another aggregate of one of `hosts` has another zone. */
  async function checkZoneConflicts(
    a: ApiAggregate,
    zone: string | null,
    hosts: readonly string[],
  ): Promise<void> {
    if (zone === null) return;
    for (const other of await store.list()) {
      if (other.id === a.id || other.availabilityZone === null || other.availabilityZone === zone) continue;
      const shared = other.hosts.filter((h) => hosts.includes(h));
      if (shared.length > 0)
        throw conflict(
          `Cannot add host to aggregate ${a.id}. Reason: One or more hosts already in availability zone(s) ['${other.availabilityZone}'].`,
        );
    }
  }

  function withZone(metadata: Readonly<Record<string, string>>, zone: string | null | undefined) {
    const next = { ...metadata };
    if (zone === null) delete next.availability_zone;
    else if (zone !== undefined) next.availability_zone = zone;
    return next;
  }

  const admin = (rule: string, auth: Parameters<typeof callerOf>[0]) =>
    services.policy.authorize(`os_compute_api:os-aggregates:${rule}`, callerOf(auth));

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-aggregates',
      service: 'compute',
      summary: 'List aggregates',
      rules: ['os_compute_api:os-aggregates:index'],
      handler: async ({ request, reply, auth }) => {
        const v = beginCompute(request, reply);
        admin('index', auth);
        return { status: 200, body: { aggregates: (await store.list()).map((a) => aggregateView(a, v)) } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/os-aggregates',
      service: 'compute',
      summary: 'Create an aggregate',
      rules: ['os_compute_api:os-aggregates:create'],
      body: createBody,
      handler: async ({ request, reply, auth, body }) => {
        const v = beginCompute(request, reply);
        admin('create', auth);
        const zone = body.aggregate.availability_zone ?? null;
        if (zone === internalZone)
          throw badRequest(
            'Aggregates cannot be created or updated with the internal availability zone.',
            'body.aggregate.availability_zone',
          );
        const a = await store.create(body.aggregate.name, withZone({}, zone), now());
        if (!a) throw conflict(`Aggregate ${body.aggregate.name} already exists.`);
        return { status: 200, body: { aggregate: aggregateView(a, v) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-aggregates/:id',
      service: 'compute',
      summary: 'Show an aggregate',
      rules: ['os_compute_api:os-aggregates:show'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        admin('show', auth);
        return { status: 200, body: { aggregate: aggregateView(await load(params.id), v) } };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/os-aggregates/:id',
      service: 'compute',
      summary: 'Rename an aggregate or change its availability zone',
      rules: ['os_compute_api:os-aggregates:update'],
      params: idParams,
      body: updateBody,
      handler: async ({ request, reply, auth, params, body }) => {
        const v = beginCompute(request, reply);
        admin('update', auth);
        const a = await load(params.id);
        const zone = body.aggregate.availability_zone;
        await checkZoneChange(a, zone, 'body.aggregate.availability_zone');
        const ok = await store.update(
          a.id,
          {
            ...(body.aggregate.name !== undefined ? { name: body.aggregate.name } : {}),
            metadata: withZone(a.metadata, zone),
          },
          now(),
        );
        if (!ok) throw conflict(`Aggregate ${body.aggregate.name} already exists.`);
        await applyAggregates(services, store, a.hosts);
        return { status: 200, body: { aggregate: aggregateView(await load(params.id), v) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/os-aggregates/:id',
      service: 'compute',
      summary: 'Delete an aggregate without hosts',
      rules: ['os_compute_api:os-aggregates:delete'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        admin('delete', auth);
        const a = await load(params.id);
        if (a.hosts.length > 0)
          throw badRequest(`Cannot remove aggregate ${a.id}. Reason: Host aggregate is not empty.`, 'id');
        await store.delete(a.id);
        return { status: 200 };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/os-aggregates/:id/action',
      service: 'compute',
      summary: 'Add or remove a host, or set metadata',
      rules: [
        'os_compute_api:os-aggregates:add_host',
        'os_compute_api:os-aggregates:remove_host',
        'os_compute_api:os-aggregates:set_metadata',
      ],
      params: idParams,
      body: actionBody,
      handler: async ({ request, reply, auth, params, body }) => {
        const v = beginCompute(request, reply);
        if ('add_host' in body) {
          admin('add_host', auth);
          const a = await load(params.id);
          const hostId = body.add_host.host;
          if (!(await services.engine.hosts.get(hostId)))
            throw notFound(`Compute host ${hostId} could not be found.`);
          await checkZoneConflicts(a, a.availabilityZone, [hostId]);
          if (!(await store.addHost(a.id, hostId, now())))
            throw conflict(`Aggregate ${a.id} already has host ${hostId}.`);
          await applyAggregates(services, store, [hostId]);
        } else if ('remove_host' in body) {
          admin('remove_host', auth);
          const a = await load(params.id);
          const hostId = body.remove_host.host;
          if (!(await store.removeHost(a.id, hostId, now())))
            throw notFound(`Cannot remove host ${hostId} in aggregate ${a.id}: not found.`);
          await applyAggregates(services, store, [hostId]);
        } else {
          admin('set_metadata', auth);
          const a = await load(params.id);
          const next: Record<string, string> = { ...a.metadata };
          for (const [k, value] of Object.entries(body.set_metadata.metadata)) {
            if (value === null) delete next[k];
            else next[k] = value;
          }
          const zone = next.availability_zone ?? null;
          await checkZoneChange(a, zone, 'body.set_metadata.metadata.availability_zone');
          await store.update(a.id, { metadata: next }, now());
          await applyAggregates(services, store, a.hosts);
        }
        return { status: 200, body: { aggregate: aggregateView(await load(params.id), v) } };
      },
    }),
  ];
}
