import type { ApiServices } from '../../http/api-services.js';
import type { RouteSpec } from '../../http/route.js';
import { flavorExtrasRoutes } from './flavor-extras-routes.js';
import { flavorRoutes } from './flavors-routes.js';
import { hypervisorRoutes } from './hypervisors-routes.js';
import { migrateComputeResources } from './resource-migrations.js';
import { computeResourcePolicies } from './resource-policies.js';
import { versionRoutes } from './versions-routes.js';

export { migrateComputeResources } from './resource-migrations.js';

/**
 * The routes of the compute resources besides servers, with their policy defaults registered;
 * the caller must have run {@link migrateComputeResources} on `services.db` (tests do it after
 * building the harness).
 */
export function computeResourceRouteSpecs(services: ApiServices): RouteSpec[] {
  services.policy.register(computeResourcePolicies);
  return [
    ...versionRoutes(services),
    ...flavorRoutes(services),
    ...flavorExtrasRoutes(services),
    ...hypervisorRoutes(services),
  ];
}

/**
 * Migrates the compute resource tables, registers Nova's policy defaults for them and returns
 * their routes: version documents, flavors (with access and extra specs), hypervisors,
 * aggregates, availability zones, server groups, quota sets, limits, services and key pairs.
 */
export async function computeResourceRoutes(services: ApiServices): Promise<RouteSpec[]> {
  await migrateComputeResources(services.db);
  return computeResourceRouteSpecs(services);
}
