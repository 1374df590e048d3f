import type { Flavor } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { AuthContext } from '../../http/auth-context.js';
import { isAdmin } from '../../http/auth-context.js';
import type { ComputeResourceTables, FlavorAttrsRow } from './resource-tables.js';

/** A flavor with the API-only attributes Nova shows. */
export interface ApiFlavor {
  readonly flavor: Flavor;
  readonly description: string | null;
  readonly isPublic: boolean;
  readonly swap: number;
  readonly ephemeral: number;
  readonly rxtxFactor: number;
  readonly disabled: boolean;
}

/** Attributes of a flavor created outside the API (the engine's seeded flavors): Nova's defaults. */
const defaults: Omit<FlavorAttrsRow, 'flavor_id'> = {
  description: null,
  is_public: 1,
  swap: 0,
  ephemeral: 0,
  rxtx_factor: 1,
  disabled: 0,
};

/** Reads and writes the API-only flavor attributes and the access list of private flavors. */
export class FlavorAttrs {
  constructor(private readonly db: Kysely<ComputeResourceTables>) {}

  /** Joins engine flavors with their attributes. */
  async withAttrs(flavors: readonly Flavor[]): Promise<ApiFlavor[]> {
    if (flavors.length === 0) return [];
    const rows = await this.db.selectFrom('compute_flavor_attrs').selectAll().execute();
    const byId = new Map(rows.map((r) => [r.flavor_id, r]));
    return flavors.map((f) => toApi(f, byId.get(f.id)));
  }

  async one(flavor: Flavor): Promise<ApiFlavor> {
    const row = await this.db
      .selectFrom('compute_flavor_attrs')
      .selectAll()
      .where('flavor_id', '=', flavor.id)
      .executeTakeFirst();
    return toApi(flavor, row);
  }

  async save(row: FlavorAttrsRow): Promise<void> {
    await this.db.deleteFrom('compute_flavor_attrs').where('flavor_id', '=', row.flavor_id).execute();
    await this.db.insertInto('compute_flavor_attrs').values(row).execute();
  }

  /** Forgets a deleted flavor's attributes and access list. */
  async forget(flavorId: string): Promise<void> {
    await this.db.deleteFrom('compute_flavor_attrs').where('flavor_id', '=', flavorId).execute();
    await this.db.deleteFrom('compute_flavor_access').where('flavor_id', '=', flavorId).execute();
  }

  async access(flavorId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('compute_flavor_access')
      .select('project_id')
      .where('flavor_id', '=', flavorId)
      .orderBy('project_id')
      .execute();
    return rows.map((r) => r.project_id);
  }

  /** @returns false if the project already had access */
  async grant(flavorId: string, projectId: string): Promise<boolean> {
    const have = await this.access(flavorId);
    if (have.includes(projectId)) return false;
    try {
      await this.db
        .insertInto('compute_flavor_access')
        .values({ flavor_id: flavorId, project_id: projectId })
        .execute();
      return true;
    } catch {
      return false;
    }
  }

  /** @returns false if the project had no access */
  async revoke(flavorId: string, projectId: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('compute_flavor_access')
      .where('flavor_id', '=', flavorId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Projects' access to private flavors, for filtering a listing. */
  async accessible(projectId: string | null): Promise<Set<string>> {
    if (projectId === null) return new Set();
    const rows = await this.db
      .selectFrom('compute_flavor_access')
      .select('flavor_id')
      .where('project_id', '=', projectId)
      .execute();
    return new Set(rows.map((r) => r.flavor_id));
  }

  /** Whether the caller may see the flavor (public, admin, or granted to the caller's project). */
  async visible(f: ApiFlavor, auth: AuthContext): Promise<boolean> {
    if (f.isPublic || isAdmin(auth)) return true;
    return (await this.accessible(auth.projectId)).has(f.flavor.id);
  }
}

function toApi(flavor: Flavor, row: FlavorAttrsRow | undefined): ApiFlavor {
  const r = row ?? { flavor_id: flavor.id, ...defaults };
  return {
    flavor,
    description: r.description,
    isPublic: Number(r.is_public) === 1,
    swap: Number(r.swap),
    ephemeral: Number(r.ephemeral),
    rxtxFactor: Number(r.rxtx_factor),
    disabled: Number(r.disabled) === 1,
  };
}
