import { randomUUID } from 'node:crypto';
import type { ServerGroup } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault, badRequest, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type AuthContext, isAdmin } from '../../http/auth-context.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { queryFlag } from './compute-nodes.js';
import { quotaSnapshot } from './quota-sets-routes.js';
import { beginCompute, callerOf, intQuery, nameText, resourceDb } from './resource-common.js';

const hardPolicies = ['affinity', 'anti-affinity'] as const;
const allPolicies = [...hardPolicies, 'soft-affinity', 'soft-anti-affinity'] as const;

const rulesSchema = z.strictObject({
  max_server_per_host: z
    .union([z.int(), z.string().regex(/^\d{1,9}$/, 'must be a positive integer')])
    .transform(Number)
    .pipe(z.int().min(1))
    .optional(),
});
/** Below 2.64: `policies`, one of them (soft ones from 2.15). */
const oldBody = z.object({
  server_group: z.strictObject({ name: nameText(255), policies: z.array(z.enum(allPolicies)).length(1) }),
});
/** From 2.64: `policy` and `rules` (`max_server_per_host` with anti-affinity only). */
const newBody = z.object({
  server_group: z.strictObject({
    name: nameText(255),
    policy: z.enum(allPolicies),
    rules: rulesSchema.optional(),
  }),
});
const listQuery = z.object({
  all_projects: z.string().max(16).optional(),
  limit: intQuery.optional(),
  offset: intQuery.optional(),
});
const idParams = z.object({ groupId: z.string().min(1).max(255) });

/** `os-server-groups`: list (own project, or `all_projects` for admins), show, create, delete. */
export function serverGroupRoutes(services: ApiServices): RouteSpec[] {
  const db = resourceDb(services);

  async function attrs(
    ids: readonly string[],
  ): Promise<Map<string, { userId: string; rules: Record<string, unknown> }>> {
    const out = new Map<string, { userId: string; rules: Record<string, unknown> }>();
    if (ids.length === 0) return out;
    const rows = await db
      .selectFrom('compute_server_group_attrs')
      .selectAll()
      .where('group_id', 'in', ids)
      .execute();
    for (const r of rows) out.set(r.group_id, { userId: r.user_id, rules: JSON.parse(r.rules) });
    return out;
  }

  function view(
    g: ServerGroup,
    a: { userId: string; rules: Record<string, unknown> } | undefined,
    v: Microversion,
  ) {
    const out: Record<string, unknown> = { id: g.id, name: g.name };
    if (atLeast(v, 64)) {
      out.policy = g.policy;
      out.rules = { ...(a?.rules ?? {}) };
    } else {
      out.policies = [g.policy];
    }
    out.members = [...g.members];
    if (!atLeast(v, 64)) out.metadata = {};
    if (atLeast(v, 13)) {
      out.project_id = g.projectId;
      out.user_id = a?.userId ?? '';
    }
    return out;
  }

  /** The group if the caller may see it (its project's, or any for an admin), else 404. */
  async function visible(groupId: string, caller: AuthContext): Promise<ServerGroup> {
    const g = await services.engine.serverGroups.get(groupId);
    if (!g || (!isAdmin(caller) && g.projectId !== caller.projectId))
      throw notFound(`Instance group ${groupId} could not be found.`);
    return g;
  }

  function fail(error: z.ZodError): never {
    const issue = error.issues[0];
    const path = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
    throw badRequest(`Invalid input for field/attribute ${path}: ${issue?.message ?? 'invalid'}`, path);
  }

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-server-groups',
      service: 'compute',
      summary: 'List server groups',
      rules: ['os_compute_api:os-server-groups:index', 'os_compute_api:os-server-groups:index:all_projects'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        services.policy.authorize('os_compute_api:os-server-groups:index', caller, {
          project_id: caller.projectId,
        });
        let all = queryFlag(query.all_projects);
        if (all && !services.policy.enforce('os_compute_api:os-server-groups:index:all_projects', caller))
          all = false;
        let groups = await services.engine.serverGroups.list(all ? undefined : (caller.projectId ?? ''));
        groups.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        const offset = query.offset ?? 0;
        groups = groups.slice(offset, query.limit === undefined ? undefined : offset + query.limit);
        const a = await attrs(groups.map((g) => g.id));
        return { status: 200, body: { server_groups: groups.map((g) => view(g, a.get(g.id), v)) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-server-groups/:groupId',
      service: 'compute',
      summary: 'Show a server group',
      rules: ['os_compute_api:os-server-groups:show'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const g = await visible(params.groupId, caller);
        services.policy.authorize('os_compute_api:os-server-groups:show', caller, {
          project_id: g.projectId,
        });
        const a = await attrs([g.id]);
        return { status: 200, body: { server_group: view(g, a.get(g.id), v) } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/os-server-groups',
      service: 'compute',
      summary: 'Create a server group',
      rules: ['os_compute_api:os-server-groups:create'],
      body: z.unknown(),
      handler: async ({ request, reply, auth, body }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const projectId = caller.projectId ?? '';
        services.policy.authorize('os_compute_api:os-server-groups:create', caller, {
          project_id: projectId,
          user_id: caller.userId,
        });
        let name: string;
        let policy: (typeof allPolicies)[number];
        let rules: Record<string, unknown> = {};
        if (atLeast(v, 64)) {
          const parsed = newBody.safeParse(body);
          if (!parsed.success) fail(parsed.error);
          ({ name, policy } = parsed.data.server_group);
          const given = parsed.data.server_group.rules ?? {};
          if (given.max_server_per_host !== undefined) {
            if (policy !== 'anti-affinity')
              throw badRequest(
                'Only anti-affinity policy supports rules.',
                'body.server_group.rules.max_server_per_host',
              );
            rules = { max_server_per_host: given.max_server_per_host };
          }
        } else {
          const parsed = oldBody.safeParse(body);
          if (!parsed.success) fail(parsed.error);
          name = parsed.data.server_group.name;
          policy = parsed.data.server_group.policies[0]!;
          if (!atLeast(v, 15) && !(hardPolicies as readonly string[]).includes(policy))
            throw badRequest(
              `Invalid input for field/attribute body.server_group.policies.0: '${policy}' is not one of ['anti-affinity', 'affinity']`,
              'body.server_group.policies.0',
            );
        }
        const q = await quotaSnapshot(services, projectId);
        const limit = q.limits.server_groups ?? -1;
        if (limit >= 0 && (q.inUse.server_groups ?? 0) + 1 > limit)
          throw new ApiFault(403, 'Quota exceeded, too many server groups.', { faultName: 'forbidden' });
        const group = await services.engine.serverGroups.create({
          id: randomUUID(),
          name,
          projectId,
          policy,
        });
        try {
          await db
            .insertInto('compute_server_group_attrs')
            .values({ group_id: group.id, user_id: caller.userId, rules: JSON.stringify(rules) })
            .execute();
        } catch (e) {
          await services.engine.serverGroups.delete(group.id);
          throw e;
        }
        return {
          status: 200,
          body: { server_group: view(group, { userId: caller.userId, rules }, v) },
        };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/os-server-groups/:groupId',
      service: 'compute',
      summary: 'Delete a server group',
      rules: ['os_compute_api:os-server-groups:delete'],
      params: idParams,
      handler: async ({ request, reply, auth, params }) => {
        beginCompute(request, reply);
        const caller = callerOf(auth);
        const g = await visible(params.groupId, caller);
        services.policy.authorize('os_compute_api:os-server-groups:delete', caller, {
          project_id: g.projectId,
        });
        await services.engine.serverGroups.delete(g.id);
        await db.deleteFrom('compute_server_group_attrs').where('group_id', '=', g.id).execute();
        return { status: 204 };
      },
    }),
  ];
}
