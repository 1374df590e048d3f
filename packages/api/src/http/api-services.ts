import type { ComputeEngine } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { PolicyEngine } from '../policy/policy-engine.js';

/** Public base URLs of the three services, as the catalog and links show them. */
export interface PublicUrls {
  /** e.g. `http://127.0.0.1:8774/v2.1` */
  readonly compute: string;
  /** Glance's unversioned root, e.g. `http://127.0.0.1:8774/image` */
  readonly image: string;
  /** e.g. `http://127.0.0.1:8774/v3` */
  readonly identity: string;
}

/** Path prefixes each service's routes live under on the one listener. */
export const servicePaths = Object.freeze({ compute: '/v2.1', image: '/image', identity: '/v3' });

/**
 * What every route module gets: the engine, the policy, the public URLs and the API's own
 * database (identity, keypairs: records the engine does not keep). Each module owns its tables and
 * migrations there (Kysely's `Migrator` with a table name of its own) and views the database with
 * `db.withTables<ItsTables>()`.
 */
export interface ApiServices {
  readonly engine: ComputeEngine;
  readonly policy: PolicyEngine;
  readonly urls: PublicUrls;
  readonly db: Kysely<object>;
  /**
   * The networks the engine's NetworkAdapter serves, when it has one (what Nova asks Neutron):
   * `POST /servers` checks the `networks` it is given against it, and `os-networks` lists it.
   * Absent: the cloud has no network service (networks and ports cannot be requested).
   */
  readonly network?: NetworkCatalog;
}

/** A network as {@link NetworkCatalog} lists it. */
export interface CatalogNetwork {
  readonly id: string;
  readonly name: string;
  /** IPv4 subnet, e.g. `10.0.0.0/24`. */
  readonly cidr: string;
  readonly gateway?: string;
}

/** A port as {@link NetworkCatalog} shows it. */
export interface CatalogPort {
  readonly id: string;
  readonly networkId: string;
  /** The instance it is bound to, if any. */
  readonly instanceId?: string;
}

/**
 * Read access to the networks and ports of the engine's NetworkAdapter (`LocalNetworkAdapter`
 * has this shape). `getPort` rejects with a `NotFoundError` for an unknown port.
 */
export interface NetworkCatalog {
  listNetworks(): Promise<readonly CatalogNetwork[]>;
  getPort(id: string): Promise<CatalogPort>;
}
