import { createHash } from 'node:crypto';
import type { PublicUrls } from '../http/api-services.js';

/** The region every endpoint is in. */
export const catalogRegion = 'RegionOne';

/** One endpoint of a catalog entry, in Keystone's v3 shape. */
export interface CatalogEndpoint {
  readonly id: string;
  readonly interface: 'public' | 'internal' | 'admin';
  readonly region_id: string;
  readonly url: string;
  readonly region: string;
}

/** One service of the catalog, in Keystone's v3 shape. */
export interface CatalogEntry {
  readonly endpoints: readonly CatalogEndpoint[];
  readonly id: string;
  readonly type: string;
  readonly name: string;
}

const interfaces = ['public', 'internal', 'admin'] as const;

/** A stable id (32 hex digits) for a catalog item: the same in every process and after a restart. */
function stableId(...parts: string[]): string {
  return createHash('sha256')
    .update(`nova-lfs:catalog:${parts.join(':')}`)
    .digest('hex')
    .slice(0, 32);
}

/**
 * The service catalog tokens carry: compute (`nova`), image (`glance`, its unversioned root) and
 * identity (`keystone`) only, each with a public, an internal and an admin endpoint in
 * `RegionOne`. Services that do not exist here (network, volume, placement) are left out on
 * purpose: the clients break on a listed endpoint that does not answer.
 */
export function serviceCatalog(urls: PublicUrls): CatalogEntry[] {
  const entry = (type: string, name: string, url: string): CatalogEntry => ({
    endpoints: interfaces.map((iface) => ({
      id: stableId(type, iface),
      interface: iface,
      region_id: catalogRegion,
      url,
      region: catalogRegion,
    })),
    id: stableId(type),
    type,
    name,
  });
  return [
    entry('compute', 'nova', urls.compute),
    entry('image', 'glance', urls.image),
    entry('identity', 'keystone', urls.identity),
  ];
}
