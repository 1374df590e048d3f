import type { ApiServices } from '../../http/api-services.js';
import type { RouteSpec } from '../../http/route.js';
import { eventRoutes } from './events-routes.js';
import { instanceActionRoutes } from './instance-actions-routes.js';
import { interfaceAttachmentRoutes } from './interface-attachments-routes.js';
import { migrationRoutes } from './migration-routes.js';
import { networkRoutes } from './networks-routes.js';
import { type SnapshotRecorder, serverActionRoutes } from './server-actions-routes.js';
import { migrateServers, ServerAttrs } from './server-attrs.js';
import { serverMetadataRoutes } from './server-metadata-routes.js';
import { serverPolicies } from './server-policies.js';
import { serverRoutes } from './servers-routes.js';
import { volumeAttachmentRoutes } from './volume-attachments-routes.js';

export type { SnapshotRecorder } from './server-actions-routes.js';
export { migrateServers } from './server-attrs.js';

/** Options of {@link computeServerRoutes}. */
export interface ServerRoutesOptions {
  /** Called after `createImage` made a snapshot, before the 202 (the image API records its owner). */
  readonly recordSnapshot?: SnapshotRecorder;
}

/**
 * The servers routes with their policy defaults registered; the caller must have run
 * {@link migrateServers} on `services.db`.
 */
export function computeServerRouteSpecs(
  services: ApiServices,
  options: ServerRoutesOptions = {},
): RouteSpec[] {
  services.policy.register(serverPolicies);
  const attrs = new ServerAttrs(services.db);
  return [
    ...serverRoutes(services, attrs),
    ...serverActionRoutes(services, attrs, options.recordSnapshot),
    ...serverMetadataRoutes(services),
    ...volumeAttachmentRoutes(services),
    ...instanceActionRoutes(services),
    ...migrationRoutes(services),
    ...eventRoutes(services),
    ...interfaceAttachmentRoutes(services),
    ...networkRoutes(services),
  ];
}

/**
 * Migrates the servers tables and returns the servers routes: servers (list, detail, show,
 * create, update, delete), their actions, metadata, volume attachments, instance actions and the
 * event stream.
 */
export async function computeServerRoutes(
  services: ApiServices,
  options: ServerRoutesOptions = {},
): Promise<RouteSpec[]> {
  await migrateServers(services.db);
  return computeServerRouteSpecs(services, options);
}
