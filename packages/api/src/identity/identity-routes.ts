import type { ApiServices } from '../http/api-services.js';
import type { RouteSpec } from '../http/route.js';
import { authRoutes } from './auth-routes.js';
import { groupRoutes } from './group-routes.js';
import { identityPolicies } from './identity-policies.js';
import type { IdentityService } from './identity-service.js';
import { projectRoutes } from './project-routes.js';
import { roleRoutes } from './role-routes.js';
import { userRoutes } from './user-routes.js';

/**
 * Every Identity v3 route under `/v3` (service `identity`): the version document, tokens and
 * `/v3/auth`, projects and domains, users and groups, roles, grants and role assignments.
 * Registers Keystone's default policy rules on `services.policy` (an operator's overrides win);
 * every route checks its rule.
 */
export function identityRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  services.policy.register(identityPolicies);
  return [
    ...authRoutes(services, identity),
    ...projectRoutes(services, identity),
    ...userRoutes(services, identity),
    ...groupRoutes(services, identity),
    ...roleRoutes(services, identity),
  ];
}
