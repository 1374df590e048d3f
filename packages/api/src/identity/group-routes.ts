import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type RouteSpec, route } from '../http/route.js';
import { identityName } from './auth-request.js';
import type { IdentityGroup, IdentityUser } from './identity-backend.js';
import {
  authorize,
  callerOf,
  collectionLinks,
  defaultDomainOf,
  descriptionText,
  groupTarget,
  groupView,
  nameDomainFilter,
  nameDomainQuery,
  notFoundFault,
  plausibleId,
  policyTarget,
  userTarget,
  userView,
} from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';

const groupName = identityName(64);
const createGroupBody = z.object({
  group: z.object({
    name: groupName,
    domain_id: identityName(64).optional(),
    description: descriptionText.nullable().optional(),
  }),
});
const updateGroupBody = z.object({
  group: z.object({ name: groupName.optional(), description: descriptionText.nullable().optional() }),
});

const groupParams = z.object({ groupId: z.string() });
const memberParams = z.object({ groupId: z.string(), userId: z.string() });

/**
 * `/v3/groups`: list, show, create, update, delete, members (list, add, check, remove). Writes to a
 * read-only backend (LDAP) are refused with 403, as Keystone does.
 */
export function groupRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const backend = identity.backend;
  const findUser = async (id: string): Promise<IdentityUser | undefined> =>
    plausibleId(id) ? backend.getUser({ id }) : undefined;
  const findGroup = async (id: string): Promise<IdentityGroup | undefined> =>
    plausibleId(id) ? backend.getGroup(id) : undefined;

  return [
    route({
      method: 'GET',
      url: '/v3/groups',
      service: 'identity',
      summary: 'List groups (filters: name, domain_id)',
      rules: ['identity:list_groups'],
      query: nameDomainQuery,
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_groups', caller, { 'target.group.domain_id': query.domain_id });
        const groups = await backend.listGroups(nameDomainFilter(query));
        return {
          status: 200,
          body: {
            groups: groups.map((g) => groupView(services, g)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'POST',
      url: '/v3/groups',
      service: 'identity',
      summary: 'Create a group',
      rules: ['identity:create_group'],
      body: createGroupBody,
      handler: async ({ auth, body }) => {
        const caller = callerOf(auth);
        const g = body.group;
        const domainId = g.domain_id ?? defaultDomainOf(caller);
        authorize(
          services,
          'identity:create_group',
          caller,
          policyTarget({ group: { domain_id: domainId } }),
        );
        if (!(await identity.projects.domain({ id: domainId }))) throw notFoundFault('domain', domainId);
        const group = await identity.createGroup({
          name: g.name,
          domainId,
          description: g.description ?? '',
        });
        return { status: 201, body: { group: groupView(services, group) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/groups/:groupId',
      service: 'identity',
      summary: 'Show a group',
      rules: ['identity:get_group'],
      params: groupParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const group = await findGroup(params.groupId);
        authorize(services, 'identity:get_group', caller, policyTarget({ group: groupTarget(group) }));
        if (!group) throw notFoundFault('group', params.groupId);
        return { status: 200, body: { group: groupView(services, group) } };
      },
    }),
    route({
      method: 'PATCH',
      url: '/v3/groups/:groupId',
      service: 'identity',
      summary: 'Update a group',
      rules: ['identity:update_group'],
      params: groupParams,
      body: updateGroupBody,
      handler: async ({ auth, params, body }) => {
        const caller = callerOf(auth);
        const group = await findGroup(params.groupId);
        authorize(services, 'identity:update_group', caller, policyTarget({ group: groupTarget(group) }));
        if (!group) throw notFoundFault('group', params.groupId);
        const g = body.group;
        const updated = await identity.updateGroup(group.id, {
          ...(g.name !== undefined ? { name: g.name } : {}),
          ...(g.description !== undefined ? { description: g.description ?? '' } : {}),
        });
        if (!updated) throw notFoundFault('group', params.groupId);
        return { status: 200, body: { group: groupView(services, updated) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/groups/:groupId',
      service: 'identity',
      summary: 'Delete a group (its memberships and assignments go too)',
      rules: ['identity:delete_group'],
      params: groupParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const group = await findGroup(params.groupId);
        authorize(services, 'identity:delete_group', caller, policyTarget({ group: groupTarget(group) }));
        if (!group || !(await identity.deleteGroup(group.id))) throw notFoundFault('group', params.groupId);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/groups/:groupId/users',
      service: 'identity',
      summary: 'Members of a group',
      rules: ['identity:list_users_in_group'],
      params: groupParams,
      handler: async ({ auth, params, request }) => {
        const caller = callerOf(auth);
        const group = await findGroup(params.groupId);
        authorize(
          services,
          'identity:list_users_in_group',
          caller,
          policyTarget({ group: groupTarget(group) }),
        );
        if (!group) throw notFoundFault('group', params.groupId);
        const users = await backend.membersOf(group.id);
        return {
          status: 200,
          body: { users: users.map((u) => userView(services, u)), links: collectionLinks(services, request) },
        };
      },
    }),
    ...memberRoutes(services, identity, findUser, findGroup),
  ];
}

function memberRoutes(
  services: ApiServices,
  identity: IdentityService,
  findUser: (id: string) => Promise<IdentityUser | undefined>,
  findGroup: (id: string) => Promise<IdentityGroup | undefined>,
): RouteSpec[] {
  const load = async (
    rule: string,
    auth: Parameters<typeof callerOf>[0],
    p: z.output<typeof memberParams>,
  ) => {
    const caller = callerOf(auth);
    const [group, user] = await Promise.all([findGroup(p.groupId), findUser(p.userId)]);
    authorize(services, rule, caller, policyTarget({ group: groupTarget(group), user: userTarget(user) }));
    if (!group) throw notFoundFault('group', p.groupId);
    if (!user) throw notFoundFault('user', p.userId);
    return { group, user };
  };
  const notMember = (p: z.output<typeof memberParams>) =>
    new ApiFault(404, `User ${p.userId} is not a member of group ${p.groupId}.`);
  return [
    route({
      method: 'PUT',
      url: '/v3/groups/:groupId/users/:userId',
      service: 'identity',
      summary: 'Add a user to a group',
      rules: ['identity:add_user_to_group'],
      params: memberParams,
      handler: async ({ auth, params }) => {
        const { group, user } = await load('identity:add_user_to_group', auth, params);
        await identity.addUserToGroup(group.id, user.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'HEAD',
      url: '/v3/groups/:groupId/users/:userId',
      service: 'identity',
      summary: 'Check that a user is in a group',
      rules: ['identity:check_user_in_group'],
      params: memberParams,
      handler: async ({ auth, params }) => {
        const { group, user } = await load('identity:check_user_in_group', auth, params);
        if (!(await identity.isUserInGroup(group.id, user.id))) throw notMember(params);
        return { status: 204 };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/groups/:groupId/users/:userId',
      service: 'identity',
      summary: 'Remove a user from a group',
      rules: ['identity:remove_user_from_group'],
      params: memberParams,
      handler: async ({ auth, params }) => {
        const { group, user } = await load('identity:remove_user_from_group', auth, params);
        if (!(await identity.removeUserFromGroup(group.id, user.id))) throw notMember(params);
        return { status: 204 };
      },
    }),
  ];
}
