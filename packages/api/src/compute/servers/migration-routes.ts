import type { MigrationRecord, MigrationStatus } from '@nova-lfs/core';
import { migrationStatuses } from '@nova-lfs/core';
import { z } from 'zod';
import { notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { beginServers, serverFor } from './server-access.js';
import { isoMicros } from './server-view.js';

/** Nova's `migration_type` of a kind of move. */
const novaKinds: Readonly<Record<MigrationRecord['kind'], string>> = {
  live: 'live-migration',
  cold: 'migration',
  resize: 'resize',
  evacuation: 'evacuation',
};

/** Live migration statuses Nova shows as in progress (`servers/{id}/migrations`). */
const inProgress: readonly MigrationStatus[] = ['accepted', 'preparing', 'running'];

async function hostNames(services: ApiServices): Promise<Map<string, string>> {
  return new Map((await services.engine.hosts.list()).map((h) => [h.id, h.name]));
}

/** One record as `os-migrations` shows it. */
function migrationView(m: MigrationRecord, names: ReadonlyMap<string, string>, version: number) {
  // as in Nova: `*_compute` the compute service's host (the engine's host id), `*_node` the
  // hypervisor's node name; `dest_host` (Nova: the destination's address) the host id too
  const sourceNode = names.get(m.sourceHostId) ?? m.sourceHostId;
  const destNode = m.destHostId === null ? null : (names.get(m.destHostId) ?? m.destHostId);
  const view: Record<string, unknown> = {
    id: m.id,
    instance_uuid: m.instanceId,
    source_compute: m.sourceHostId,
    source_node: sourceNode,
    dest_compute: m.destHostId,
    dest_node: destNode,
    dest_host: m.destHostId,
    status: m.status,
    old_instance_type_id: m.oldFlavorId,
    new_instance_type_id: m.newFlavorId,
    created_at: isoMicros(m.createdAt),
    updated_at: isoMicros(m.updatedAt),
  };
  if (version >= 23) view.migration_type = novaKinds[m.kind];
  if (version >= 59) view.uuid = m.id;
  if (version >= 80) view.project_id = m.projectId;
  return view;
}

/** One in-progress live migration as `servers/{id}/migrations` shows it (memory figures from its progress). */
function serverMigrationView(m: MigrationRecord, names: ReadonlyMap<string, string>, version: number) {
  const p = m.progress;
  return {
    ...migrationView(m, names, version),
    server_uuid: m.instanceId,
    memory_total_bytes: p?.dataTotalBytes ?? null,
    memory_processed_bytes: p?.dataProcessedBytes ?? null,
    memory_remaining_bytes: p?.dataRemainingBytes ?? null,
    disk_total_bytes: null,
    disk_processed_bytes: null,
    disk_remaining_bytes: null,
  };
}

/**
 * Nova's migrations API: `GET /os-migrations` (admin; filters `instance_uuid`, `status`,
 * `migration_type`), and per server `GET /servers/{id}/migrations[/{mid}]` (in-progress live
 * migrations), `DELETE` one (abort: the guest stays on the source) and `POST .../action` with
 * `force_complete` (post-copy or a raised downtime).
 */
export function migrationRoutes(services: ApiServices): RouteSpec[] {
  const serverParams = z.object({ serverId: z.string().min(1).max(255) });
  const oneParams = serverParams.extend({ migrationId: z.string().min(1).max(255) });

  async function runningOf(
    serverId: string,
    migrationId: string,
    rule: string,
    auth: Parameters<typeof serverFor>[1],
  ) {
    const instance = await serverFor(services, auth, serverId, rule);
    const found = (await services.engine.migrations.list({ instanceId: instance.id, kind: 'live' })).find(
      (m) => m.id === migrationId && inProgress.includes(m.status),
    );
    if (!found) throw notFound(`Migration ${migrationId} could not be found for instance ${instance.id}.`);
    return { instance, migration: found };
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-migrations',
      service: 'compute',
      summary: 'List the migrations of every server',
      rules: ['os_compute_api:os-migrations:index'],
      query: z.object({
        instance_uuid: z.string().max(255).optional(),
        status: z.string().max(32).optional(),
        migration_type: z.string().max(32).optional(),
        hidden: z.string().max(8).optional(),
      }),
      handler: async ({ request, reply, auth, query }) => {
        const req = beginServers(services, request, reply, auth, 'os_compute_api:os-migrations:index', {});
        const kind = Object.entries(novaKinds).find(([, n]) => n === query.migration_type)?.[0];
        if (query.migration_type !== undefined && kind === undefined)
          return { status: 200, body: { migrations: [] } };
        const status = query.status?.toLowerCase();
        if (status !== undefined && !(migrationStatuses as readonly string[]).includes(status))
          return { status: 200, body: { migrations: [] } };
        const list = await services.engine.migrations
          .list({
            ...(query.instance_uuid !== undefined ? { instanceId: query.instance_uuid } : {}),
            ...(status !== undefined ? { status: status as MigrationStatus } : {}),
            ...(kind !== undefined ? { kind: kind as MigrationRecord['kind'] } : {}),
          })
          .catch(() => [] as MigrationRecord[]);
        const names = await hostNames(services);
        const v = req.version.minor;
        // newest first, as Nova lists them
        return { status: 200, body: { migrations: list.reverse().map((m) => migrationView(m, names, v)) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/migrations',
      service: 'compute',
      summary: 'List the in-progress live migrations of a server',
      rules: ['os_compute_api:servers:migrations:index'],
      params: serverParams,
      handler: async ({ request, reply, auth, params }) => {
        const rule = 'os_compute_api:servers:migrations:index';
        const req = beginServers(services, request, reply, auth, rule, {});
        const instance = await serverFor(services, req.auth, params.serverId, rule);
        const list = await services.engine.migrations.list({
          instanceId: instance.id,
          kind: 'live',
          status: [...inProgress],
        });
        const names = await hostNames(services);
        return {
          status: 200,
          body: { migrations: list.map((m) => serverMigrationView(m, names, req.version.minor)) },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/migrations/:migrationId',
      service: 'compute',
      summary: 'Show an in-progress live migration of a server',
      rules: ['os_compute_api:servers:migrations:show'],
      params: oneParams,
      handler: async ({ request, reply, auth, params }) => {
        const rule = 'os_compute_api:servers:migrations:show';
        const req = beginServers(services, request, reply, auth, rule, {});
        const { migration } = await runningOf(params.serverId, params.migrationId, rule, req.auth);
        return {
          status: 200,
          body: { migration: serverMigrationView(migration, await hostNames(services), req.version.minor) },
        };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/servers/:serverId/migrations/:migrationId',
      service: 'compute',
      summary: 'Abort an in-progress live migration (the server stays on its source)',
      rules: ['os_compute_api:servers:migrations:delete'],
      params: oneParams,
      handler: async ({ request, reply, auth, params }) => {
        const rule = 'os_compute_api:servers:migrations:delete';
        const req = beginServers(services, request, reply, auth, rule, {});
        const { instance } = await runningOf(params.serverId, params.migrationId, rule, req.auth);
        await services.engine.abortMigration(instance.id);
        return { status: 202 };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/servers/:serverId/migrations/:migrationId/action',
      service: 'compute',
      summary: 'Force an in-progress live migration to complete',
      rules: ['os_compute_api:servers:migrations:force_complete'],
      params: oneParams,
      body: z.object({ force_complete: z.null() }).strict(),
      handler: async ({ request, reply, auth, params }) => {
        const rule = 'os_compute_api:servers:migrations:force_complete';
        const req = beginServers(services, request, reply, auth, rule, {});
        const { instance } = await runningOf(params.serverId, params.migrationId, rule, req.auth);
        await services.engine.forceCompleteMigration(instance.id);
        return { status: 202 };
      },
    }),
  ];
}
