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
}
