import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type RouteSpec, route } from '../http/route.js';
import { authorize, callerOf, collectionLinks, filterText } from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';
import { type Assignment, impliedRoleNames, type Role } from './role-store.js';

const flag = z.string().max(16);

const listQuery = z.object({
  'user.id': filterText.optional(),
  'group.id': filterText.optional(),
  'scope.project.id': filterText.optional(),
  'scope.domain.id': filterText.optional(),
  'scope.system': filterText.optional(),
  'role.id': filterText.optional(),
  effective: flag.optional(),
  include_names: flag.optional(),
});

/** A query flag given without a value or with a true one (`?effective`, `?effective=true`). */
const isSet = (v: string | undefined) => v !== undefined && !/^(0|false|f|no|n|off)$/i.test(v);

interface Entry {
  readonly assignment: Assignment;
  /** The user a group assignment reaches (effective listing only). */
  readonly viaUser?: string;
  /** The role this entry is implied by (effective listing only). */
  readonly priorRole?: string;
}

/**
 * `GET /v3/role_assignments`: the role assignments (filters `user.id`, `group.id`,
 * `scope.project.id`, `scope.domain.id`, `scope.system`, `role.id`), or with `effective` what
 * they amount to per user: group assignments become one entry per member (with a `membership`
 * link) and implied roles are listed (with a `prior_role` link). `include_names` adds names.
 */
export function roleAssignmentRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const base = services.urls.identity;
  const scopePath = (a: Assignment) =>
    a.targetType === 'system'
      ? '/system'
      : `/${a.targetType === 'project' ? 'projects' : 'domains'}/${encodeURIComponent(a.targetId)}`;
  const assignmentLink = (a: Assignment) =>
    `${base}${scopePath(a)}/${a.actorType === 'user' ? 'users' : 'groups'}/${encodeURIComponent(a.actorId)}/roles/${encodeURIComponent(a.roleId)}`;

  return [
    route({
      method: 'GET',
      url: '/v3/role_assignments',
      service: 'identity',
      summary: 'List role assignments (filters; effective; include_names)',
      rules: ['identity:list_role_assignments'],
      query: listQuery,
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_role_assignments', caller, {
          'target.domain_id': query['scope.domain.id'],
        });
        const effective = isSet(query.effective);
        if (effective && query['group.id'] !== undefined)
          throw new ApiFault(
            400,
            'Combining effective and group filter will always result in an empty list.',
            {
              field: 'query.group.id',
            },
          );
        const scopes = [query['scope.project.id'], query['scope.domain.id'], query['scope.system']].filter(
          (x) => x !== undefined,
        );
        if (scopes.length > 1)
          throw new ApiFault(400, 'Specify one of scope.project.id, scope.domain.id and scope.system.', {
            field: 'query.scope',
          });
        const targetFilter =
          query['scope.project.id'] !== undefined
            ? { targetType: 'project' as const, targetId: query['scope.project.id'] }
            : query['scope.domain.id'] !== undefined
              ? { targetType: 'domain' as const, targetId: query['scope.domain.id'] }
              : query['scope.system'] !== undefined
                ? { targetType: 'system' as const, targetId: 'all' }
                : {};
        const allRoles = await identity.roles.list();
        const byId = new Map(allRoles.map((r) => [r.id, r]));
        const byName = new Map(allRoles.map((r) => [r.name, r]));
        const userId = query['user.id'];

        let entries: Entry[];
        if (!effective) {
          const actor =
            userId !== undefined
              ? { actorType: 'user' as const, actorIds: [userId] }
              : query['group.id'] !== undefined
                ? { actorType: 'group' as const, actorIds: [query['group.id']] }
                : {};
          const roleFilter = query['role.id'] !== undefined ? { roleId: query['role.id'] } : {};
          entries = (await identity.roles.assignments({ ...actor, ...targetFilter, ...roleFilter })).map(
            (a) => ({
              assignment: a,
            }),
          );
        } else {
          let rows: Assignment[];
          if (userId !== undefined) {
            const groups = (await identity.backend.groupsOf(userId)).map((g) => g.id);
            rows = [
              ...(await identity.roles.assignments({
                actorType: 'user',
                actorIds: [userId],
                ...targetFilter,
              })),
              ...(await identity.roles.assignments({
                actorType: 'group',
                actorIds: groups,
                ...targetFilter,
              })),
            ];
          } else rows = await identity.roles.assignments(targetFilter);
          const members = new Map<string, string[]>();
          const direct: Entry[] = [];
          for (const a of rows) {
            if (a.actorType === 'user') {
              direct.push({ assignment: a });
              continue;
            }
            let ids = members.get(a.actorId);
            if (!ids) {
              ids = (await identity.backend.membersOf(a.actorId)).map((u) => u.id);
              members.set(a.actorId, ids);
            }
            for (const id of ids)
              if (userId === undefined || id === userId) direct.push({ assignment: a, viaUser: id });
          }
          entries = [];
          for (const e of direct) {
            entries.push(e);
            const prior = byId.get(e.assignment.roleId);
            const queue = prior ? [...(impliedRoleNames[prior.name] ?? [])] : [];
            const seen = new Set<string>();
            while (queue.length) {
              const name = queue.shift()!;
              if (seen.has(name)) continue;
              seen.add(name);
              const implied = byName.get(name);
              if (implied)
                entries.push({
                  ...e,
                  assignment: { ...e.assignment, roleId: implied.id },
                  priorRole: prior!.id,
                });
              queue.push(...(impliedRoleNames[name] ?? []));
            }
          }
          if (query['role.id'] !== undefined)
            entries = entries.filter((e) => e.assignment.roleId === query['role.id']);
        }

        const names = isSet(query.include_names);
        const body = await Promise.all(entries.map((e) => view(e, names, byId)));
        return { status: 200, body: { role_assignments: body, links: collectionLinks(services, request) } };
      },
    }),
  ];

  async function view(
    e: Entry,
    names: boolean,
    roles: ReadonlyMap<string, Role>,
  ): Promise<Record<string, unknown>> {
    const a = e.assignment;
    const role: Record<string, unknown> = { id: a.roleId };
    if (names) role.name = roles.get(a.roleId)?.name ?? null;
    const out: Record<string, unknown> = { role };
    const actorUser = e.viaUser ?? (a.actorType === 'user' ? a.actorId : undefined);
    if (actorUser !== undefined) {
      const user: Record<string, unknown> = { id: actorUser };
      if (names) {
        const u = await identity.backend.getUser({ id: actorUser });
        const d = u ? await identity.projects.domain({ id: u.domainId }) : undefined;
        user.name = u?.name ?? null;
        user.domain = d ? { id: d.id, name: d.name } : null;
      }
      out.user = user;
    } else {
      const group: Record<string, unknown> = { id: a.actorId };
      if (names) {
        const g = await identity.backend.getGroup(a.actorId);
        const d = g ? await identity.projects.domain({ id: g.domainId }) : undefined;
        group.name = g?.name ?? null;
        group.domain = d ? { id: d.id, name: d.name } : null;
      }
      out.group = group;
    }
    if (a.targetType === 'system') out.scope = { system: { all: true } };
    else if (a.targetType === 'domain') {
      const domain: Record<string, unknown> = { id: a.targetId };
      if (names) domain.name = (await identity.projects.domain({ id: a.targetId }))?.name ?? null;
      out.scope = { domain };
    } else {
      const project: Record<string, unknown> = { id: a.targetId };
      if (names) {
        const p = await identity.projects.get({ id: a.targetId });
        const d = p ? await identity.projects.domain({ id: p.domainId }) : undefined;
        project.name = p?.name ?? null;
        project.domain = d ? { id: d.id, name: d.name } : null;
      }
      out.scope = { project };
    }
    const priorAssignment = e.priorRole ? { ...a, roleId: e.priorRole } : a;
    const links: Record<string, string> = { assignment: assignmentLink(priorAssignment) };
    if (e.viaUser !== undefined)
      links.membership = `${base}/groups/${encodeURIComponent(a.actorId)}/users/${encodeURIComponent(e.viaUser)}`;
    if (e.priorRole) links.prior_role = `${base}/roles/${encodeURIComponent(e.priorRole)}`;
    out.links = links;
    return out;
  }
}
