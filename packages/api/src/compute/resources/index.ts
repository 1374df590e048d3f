import type { ApiServices } from '../../http/api-services.js';
import type { RouteSpec } from '../../http/route.js';
import { syncAggregates } from './aggregate-placement.js';
import { AggregateStore } from './aggregate-store.js';
import { aggregateRoutes } from './aggregates-routes.js';
import { availabilityZoneRoutes } from './availability-zones-routes.js';
import { flavorExtrasRoutes } from './flavor-extras-routes.js';
import { flavorRoutes } from './flavors-routes.js';
import { hypervisorRoutes } from './hypervisors-routes.js';
import { keypairRoutes } from './keypairs-routes.js';
import { limitRoutes } from './limits-routes.js';
import { quotaSetRoutes } from './quota-sets-routes.js';
import { resourceDb } from './resource-common.js';
import { migrateComputeResources } from './resource-migrations.js';
import { computeResourcePolicies } from './resource-policies.js';
import { serverGroupRoutes } from './server-groups-routes.js';
import { serviceRoutes } from './services-routes.js';
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
    ...aggregateRoutes(services),
    ...availabilityZoneRoutes(services),
    ...serviceRoutes(services),
    ...quotaSetRoutes(services),
    ...limitRoutes(services),
    ...serverGroupRoutes(services),
    ...keypairRoutes(services),
  ];
}

/**
 * Migrates the compute resource tables, registers Nova's policy defaults for them and returns
 * their routes: version documents, flavors (with access and extra specs), hypervisors,
 * aggregates, availability zones, server groups, quota sets, limits, services and key pairs.
 * The stored aggregates are written to the engine's hosts again (the engine rebuilt them from
 * their bindings when it started), so call it once the hosts are added.
 */
export async function computeResourceRoutes(services: ApiServices): Promise<RouteSpec[]> {
  await migrateComputeResources(services.db);
  await syncAggregates(services, new AggregateStore(resourceDb(services)));
  return computeResourceRouteSpecs(services);
}
