/**
 * The identity module: a Keystone-compatible Identity v3 service over SQL (tokens, projects,
 * users, groups, roles, assignments, catalog) with a pluggable user and group backend.
 */
export type { AuthRequest } from './auth-request.js';
export { type DirectoryDomain, DomainRoutedBackend } from './domain-routed-backend.js';
export type { IdentityBackend, IdentityGroup, IdentityUser, UserRef } from './identity-backend.js';
export { identityPolicies } from './identity-policies.js';
export { identityRoutes } from './identity-routes.js';
export {
  createIdentityService,
  type GrantTarget,
  type IdentityService,
  type IdentityServiceOptions,
  type IssuedToken,
} from './identity-service.js';
export { PasswordHasher, type PasswordHasherOptions } from './password-hasher.js';
export type { Domain, Project } from './project-store.js';
export type { Assignment, Role } from './role-store.js';
export type { CatalogEntry } from './service-catalog.js';
export { SqlIdentityBackend } from './sql-backend.js';
export type { TokenInfo } from './token-view.js';
export {
  type GroupChanges,
  isWritableBackend,
  type NewGroup,
  type NewUser,
  type UserChanges,
  type WritableIdentityBackend,
} from './writable-backend.js';
