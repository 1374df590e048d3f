/**
 * `@nova-lfs/api`: the OpenStack-compatible REST API over a Nova LFS engine: Compute v2.1,
 * Identity v3 and Image v2 on one listener, with role-based access from policy rules.
 * @packageDocumentation
 */

export { type Microversion, maxMicroversion, minMicroversion } from './compute/microversion.js';
export { computeResourceRoutes } from './compute/resources/index.js';
export {
  computeServerRoutes,
  type ServerRoutesOptions,
  type SnapshotRecorder,
} from './compute/servers/index.js';
export { type ApiAppOptions, buildApiApp } from './http/api-app.js';
export { ApiFault, type ServiceKind } from './http/api-fault.js';
export type {
  ApiServices,
  CatalogNetwork,
  CatalogPort,
  NetworkCatalog,
  PublicUrls,
} from './http/api-services.js';
export { servicePaths } from './http/api-services.js';
export type { AuthContext, TokenValidator } from './http/auth-context.js';
export type { RateLimitOptions } from './http/rate-limiter.js';
export { type RouteAnswer, type RouteContext, type RouteSpec, route } from './http/route.js';
export { type DirectoryDomain, DomainRoutedBackend } from './identity/domain-routed-backend.js';
export type { IdentityBackend, IdentityGroup, IdentityUser, UserRef } from './identity/identity-backend.js';
export {
  activeDirectoryMapping,
  type LdapBackendOptions,
  LdapIdentityBackend,
  openLdapMapping,
} from './identity/ldap-backend.js';
export { imageRoutes, registerImageRecord } from './image/index.js';
export { PolicySyntaxError } from './policy/check-parser.js';
export { PolicyEngine, type PolicyRuleDefault, type PolicyTarget } from './policy/policy-engine.js';
export { ApiMetrics } from './server/api-metrics.js';
export { type ApiServer, type ApiServerOptions, createApiServer, publicUrlsOf } from './server/api-server.js';
