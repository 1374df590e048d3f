import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type RouteSpec, route } from '../http/route.js';
import { identityName, passwordText } from './auth-request.js';
import type { IdentityUser } from './identity-backend.js';
import {
  authorize,
  callerOf,
  collectionLinks,
  defaultDomainOf,
  descriptionText,
  groupView,
  nameDomainFilter,
  nameDomainQuery,
  notFoundFault,
  plausibleId,
  policyTarget,
  projectView,
  userTarget,
  userView,
} from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';

const emailText = z
  .string()
  .max(255)
  .refine((s) => !/[\p{Cc}\p{Cs}]/u.test(s), 'must not contain control characters');

const userFields = {
  name: identityName(255),
  password: passwordText.nullable().optional(),
  domain_id: identityName(64).optional(),
  default_project_id: identityName(64).nullable().optional(),
  enabled: z.boolean().optional(),
  email: emailText.nullable().optional(),
  description: descriptionText.nullable().optional(),
};

const createUserBody = z.object({ user: z.object(userFields) });
const updateUserBody = z.object({
  user: z.object({
    name: userFields.name.optional(),
    password: userFields.password,
    default_project_id: userFields.default_project_id,
    enabled: userFields.enabled,
    email: userFields.email,
    description: userFields.description,
  }),
});
const passwordBody = z.object({
  user: z.object({ password: passwordText, original_password: passwordText }),
});

const userParams = z.object({ userId: z.string() });

/**
 * `/v3/users`: list, show, create, update (incl. an administrative password reset), delete, the
 * owner's own password change, a user's projects and groups. Writes to a read-only backend (LDAP)
 * are refused with 403, as Keystone does.
 */
export function userRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const backend = identity.backend;
  const findUser = async (id: string): Promise<IdentityUser | undefined> =>
    plausibleId(id) ? backend.getUser({ id }) : undefined;

  return [
    route({
      method: 'GET',
      url: '/v3/users',
      service: 'identity',
      summary: 'List users (filters: name, domain_id)',
      rules: ['identity:list_users'],
      query: nameDomainQuery,
      handler: async ({ auth, query, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:list_users', caller, { 'target.domain_id': query.domain_id });
        const users = await backend.listUsers(nameDomainFilter(query));
        return {
          status: 200,
          body: { users: users.map((u) => userView(services, u)), links: collectionLinks(services, request) },
        };
      },
    }),
    route({
      method: 'POST',
      url: '/v3/users',
      service: 'identity',
      summary: 'Create a user',
      rules: ['identity:create_user'],
      body: createUserBody,
      handler: async ({ auth, body }) => {
        const caller = callerOf(auth);
        const u = body.user;
        const domainId = u.domain_id ?? defaultDomainOf(caller);
        authorize(services, 'identity:create_user', caller, policyTarget({ user: { domain_id: domainId } }));
        if (!(await identity.projects.domain({ id: domainId }))) throw notFoundFault('domain', domainId);
        const user = await identity.createUser({
          name: u.name,
          domainId,
          password: u.password ?? null,
          enabled: u.enabled ?? true,
          email: u.email ?? null,
          description: u.description ?? null,
          defaultProjectId: u.default_project_id ?? null,
        });
        return { status: 201, body: { user: userView(services, user) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/users/:userId',
      service: 'identity',
      summary: 'Show a user',
      rules: ['identity:get_user'],
      params: userParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const user = await findUser(params.userId);
        authorize(services, 'identity:get_user', caller, policyTarget({ user: userTarget(user) }));
        if (!user) throw notFoundFault('user', params.userId);
        return { status: 200, body: { user: userView(services, user) } };
      },
    }),
    route({
      method: 'PATCH',
      url: '/v3/users/:userId',
      service: 'identity',
      summary: 'Update a user (an administrator may reset the password)',
      rules: ['identity:update_user'],
      params: userParams,
      body: updateUserBody,
      handler: async ({ auth, params, body }) => {
        const caller = callerOf(auth);
        const user = await findUser(params.userId);
        authorize(services, 'identity:update_user', caller, policyTarget({ user: userTarget(user) }));
        if (!user) throw notFoundFault('user', params.userId);
        const u = body.user;
        const updated = await identity.updateUser(user.id, {
          ...(u.name !== undefined ? { name: u.name } : {}),
          ...(u.password !== undefined ? { password: u.password } : {}),
          ...(u.enabled !== undefined ? { enabled: u.enabled } : {}),
          ...(u.email !== undefined ? { email: u.email } : {}),
          ...(u.description !== undefined ? { description: u.description } : {}),
          ...(u.default_project_id !== undefined ? { defaultProjectId: u.default_project_id } : {}),
        });
        if (!updated) throw notFoundFault('user', params.userId);
        return { status: 200, body: { user: userView(services, updated) } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/users/:userId',
      service: 'identity',
      summary: 'Delete a user (its assignments and tokens go too)',
      rules: ['identity:delete_user'],
      params: userParams,
      handler: async ({ auth, params }) => {
        const caller = callerOf(auth);
        const user = await findUser(params.userId);
        authorize(services, 'identity:delete_user', caller, policyTarget({ user: userTarget(user) }));
        if (!user || !(await identity.deleteUser(user.id))) throw notFoundFault('user', params.userId);
        return { status: 204 };
      },
    }),
    route({
      method: 'POST',
      url: '/v3/users/:userId/password',
      service: 'identity',
      summary: 'Change one’s own password (the original proves who asks)',
      auth: 'none',
      params: userParams,
      body: passwordBody,
      handler: async ({ params, body }) => {
        if (!plausibleId(params.userId))
          throw new ApiFault(401, 'The request you have made requires authentication.');
        await identity.changePassword(params.userId, body.user.original_password, body.user.password);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/users/:userId/projects',
      service: 'identity',
      summary: 'Projects a user has a role on',
      rules: ['identity:list_user_projects'],
      params: userParams,
      handler: async ({ auth, params, request }) => {
        const caller = callerOf(auth);
        const user = await findUser(params.userId);
        authorize(services, 'identity:list_user_projects', caller, policyTarget({ user: userTarget(user) }));
        if (!user) throw notFoundFault('user', params.userId);
        const projects = await identity.projectsOf(user.id);
        return {
          status: 200,
          body: {
            projects: projects.map((p) => projectView(services, p)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/users/:userId/groups',
      service: 'identity',
      summary: 'Groups a user is a member of',
      rules: ['identity:list_groups_for_user'],
      params: userParams,
      handler: async ({ auth, params, request }) => {
        const caller = callerOf(auth);
        const user = await findUser(params.userId);
        authorize(
          services,
          'identity:list_groups_for_user',
          caller,
          policyTarget({ user: userTarget(user) }, { user_id: params.userId }),
        );
        if (!user) throw notFoundFault('user', params.userId);
        const groups = await backend.groupsOf(user.id);
        return {
          status: 200,
          body: {
            groups: groups.map((g) => groupView(services, g)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
  ];
}
