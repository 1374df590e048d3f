import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import type { AuthContext } from '../http/auth-context.js';
import { type RouteSpec, route } from '../http/route.js';
import { identityName } from './auth-request.js';
import {
  authorize,
  callerOf,
  collectionLinks,
  descriptionText,
  domainTarget,
  filterText,
  groupTarget,
  notFoundFault,
  plausibleId,
  policyTarget,
  projectTarget,
  roleTarget,
  roleView,
  userTarget,
} from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';
import { roleAssignmentRoutes } from './role-assignment-routes.js';
import type { Role } from './role-store.js';

const roleName = identityName(255);
const createBody = z.object({
  role: z.object({ name: roleName, description: descriptionText.nullable().optional() }),
});
const updateBody = z.object({
  role: z.object({ name: roleName.optional(), description: descriptionText.nullable().optional() }),
});
const roleParams = z.object({ roleId: z.string() });

type ActorKind = 'users' | 'groups';
type TargetKind = 'projects' | 'domains' | 'system';

/** `/v3/roles` (list, show, create, update, delete) and every grant route. */
export function roleRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const findRole = async (id: string): Promise<Role | undefined> =>
    plausibleId(id) ? identity.roles.get({ id }) : undefined;

  const roles: RouteSpec[] = [
    route({
      method: 'GET',
      url: '/v3/roles',
      service: 'identity',
      summary: 'List roles (filter: name)',
      rules: ['identity:list_roles'],
      query: z.object({ name: filterText.optional(), domain_id: filterText.optional() }),
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_roles', caller);
        // every role here is global: a domain filter lists no domain-specific role
        const list = query.domain_id
          ? []
          : await identity.roles.list(query.name !== undefined ? { name: query.name } : {});
        return {
          status: 200,
          body: { roles: list.map((r) => roleView(services, r)), links: collectionLinks(services, request) },
        };
      },
    }),
    route({
      method: 'POST',
      url: '/v3/roles',
      service: 'identity',
      summary: 'Create a role',
      rules: ['identity:create_role'],
      body: createBody,
      handler: async ({ auth, body }) => {
        authorize(services, 'identity:create_role', callerOf(auth));
        const role = await identity.createRole({
          name: body.role.name,
          description: body.role.description ?? '',
        });
        return { status: 201, body: { role: roleView(services, role) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/roles/:roleId',
      service: 'identity',
      summary: 'Show a role',
      rules: ['identity:get_role'],
      params: roleParams,
      handler: async ({ auth, params }) => {
        const role = await findRole(params.roleId);
        authorize(services, 'identity:get_role', callerOf(auth), policyTarget({ role: roleTarget(role) }));
        if (!role) throw notFoundFault('role', params.roleId);
        return { status: 200, body: { role: roleView(services, role) } };
      },
    }),
    route({
      method: 'PATCH',
      url: '/v3/roles/:roleId',
      service: 'identity',
      summary: 'Update a role',
      rules: ['identity:update_role'],
      params: roleParams,
      body: updateBody,
      handler: async ({ auth, params, body }) => {
        authorize(services, 'identity:update_role', callerOf(auth));
        const role = await findRole(params.roleId);
        if (!role) throw notFoundFault('role', params.roleId);
        const updated = await identity.updateRole(role.id, {
          ...(body.role.name !== undefined ? { name: body.role.name } : {}),
          ...(body.role.description !== undefined ? { description: body.role.description ?? '' } : {}),
        });
        if (!updated) throw notFoundFault('role', params.roleId);
        return { status: 200, body: { role: roleView(services, updated) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/roles/:roleId',
      service: 'identity',
      summary: 'Delete a role (and every assignment of it)',
      rules: ['identity:delete_role'],
      params: roleParams,
      handler: async ({ auth, params }) => {
        authorize(services, 'identity:delete_role', callerOf(auth));
        const role = await findRole(params.roleId);
        if (!role || !(await identity.deleteRole(role.id))) throw notFoundFault('role', params.roleId);
        return { status: 204 };
      },
    }),
  ];

  const grants: RouteSpec[] = [];
  for (const target of ['projects', 'domains', 'system'] as const)
    for (const actor of ['users', 'groups'] as const)
      grants.push(...grantRoutes(services, identity, target, actor));
  return [...roles, ...grants, ...roleAssignmentRoutes(services, identity)];
}

const grantParams = z.object({
  targetId: z.string().optional(),
  actorId: z.string(),
  roleId: z.string().optional(),
});

/**
 * `PUT/GET/HEAD/DELETE /v3/{projects|domains}/{id}/{users|groups}/{id}/roles/{role}` (and
 * `/v3/system/{users|groups}/{id}/roles/{role}`), and the lists of an actor's direct grants on a
 * target. A check answers 204 when the role is granted directly, 404 otherwise.
 */
function grantRoutes(
  services: ApiServices,
  identity: IdentityService,
  target: TargetKind,
  actor: ActorKind,
): RouteSpec[] {
  const base =
    target === 'system'
      ? `/v3/system/${actor}/:actorId/roles`
      : `/v3/${target}/:targetId/${actor}/:actorId/roles`;
  const actorType = actor === 'users' ? 'user' : 'group';
  const targetType = target === 'projects' ? 'project' : target === 'domains' ? 'domain' : 'system';
  const rule = (action: 'create' | 'check' | 'revoke' | 'list') =>
    target === 'system'
      ? `identity:${action === 'list' ? 'list_system_grants' : `${action}_system_grant`}_for_${actorType}`
      : `identity:${action === 'list' ? 'list_grants' : `${action}_grant`}`;

  /** Loads the target, actor and role of a grant route and checks the rule against them. */
  const load = async (auth: AuthContext | null, p: z.output<typeof grantParams>, ruleName: string) => {
    const caller = callerOf(auth);
    const targetId = target === 'system' ? 'all' : p.targetId!;
    const ok = (id: string | undefined) => id !== undefined && plausibleId(id);
    const [project, domain, user, group, role] = await Promise.all([
      target === 'projects' && ok(targetId) ? identity.projects.get({ id: targetId }) : undefined,
      target === 'domains' && ok(targetId) ? identity.projects.domain({ id: targetId }) : undefined,
      actor === 'users' && ok(p.actorId) ? identity.backend.getUser({ id: p.actorId }) : undefined,
      actor === 'groups' && ok(p.actorId) ? identity.backend.getGroup(p.actorId) : undefined,
      ok(p.roleId) ? identity.roles.get({ id: p.roleId! }) : undefined,
    ]);
    authorize(
      services,
      ruleName,
      caller,
      policyTarget({
        project: projectTarget(project),
        domain: domainTarget(domain),
        user: userTarget(user),
        group: groupTarget(group),
        role: roleTarget(role),
      }),
    );
    if (target === 'projects' && !project) throw notFoundFault('project', targetId);
    if (target === 'domains' && !domain) throw notFoundFault('domain', targetId);
    if (actor === 'users' && !user) throw notFoundFault('user', p.actorId);
    if (actor === 'groups' && !group) throw notFoundFault('group', p.actorId);
    if (p.roleId !== undefined && !role) throw notFoundFault('role', p.roleId);
    return {
      assignment: {
        actorType,
        actorId: p.actorId,
        targetType,
        targetId,
        roleId: role?.id ?? '',
      } as const,
    };
  };
  const missing = (p: z.output<typeof grantParams>) =>
    new ApiFault(
      404,
      `Could not find role assignment with role: ${p.roleId}, user or group: ${p.actorId}, project, domain, or system: ${p.targetId ?? 'all'}.`,
    );

  return [
    route({
      method: 'GET',
      url: base,
      service: 'identity',
      summary: `List the roles granted directly to ${actor === 'users' ? 'a user' : 'a group'} on ${target === 'system' ? 'the system' : `a ${targetType}`}`,
      rules: [rule('list')],
      params: grantParams,
      handler: async ({ auth, params, request }) => {
        const { assignment } = await load(auth, params, rule('list'));
        const granted = await identity.roles.assignments({
          actorType,
          actorIds: [assignment.actorId],
          targetType,
          targetId: assignment.targetId,
        });
        const list = await identity.roles.list({ ids: [...new Set(granted.map((a) => a.roleId))] });
        return {
          status: 200,
          body: { roles: list.map((r) => roleView(services, r)), links: collectionLinks(services, request) },
        };
      },
    }),
    route({
      method: 'PUT',
      url: `${base}/:roleId`,
      service: 'identity',
      summary: 'Grant a role',
      rules: [rule('create')],
      params: grantParams,
      handler: async ({ auth, params }) => {
        const { assignment } = await load(auth, params, rule('create'));
        await identity.grant(assignment);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: `${base}/:roleId`,
      service: 'identity',
      summary: 'Check a grant (HEAD too)',
      rules: [rule('check')],
      params: grantParams,
      handler: async ({ auth, params }) => {
        const { assignment } = await load(auth, params, rule('check'));
        if (!(await identity.roles.has(assignment))) throw missing(params);
        return { status: 204 };
      },
    }),
    route({
      method: 'DELETE',
      url: `${base}/:roleId`,
      service: 'identity',
      summary: 'Revoke a grant',
      rules: [rule('revoke')],
      params: grantParams,
      handler: async ({ auth, params }) => {
        const { assignment } = await load(auth, params, rule('revoke'));
        if (!(await identity.revoke(assignment))) throw missing(params);
        return { status: 204 };
      },
    }),
  ];
}
