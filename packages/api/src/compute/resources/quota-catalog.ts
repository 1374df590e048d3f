import type { Kysely } from 'kysely';
import { atLeast, type Microversion } from '../microversion.js';
import type { ComputeResourceTables } from './resource-tables.js';

/** Quota keys the engine enforces, and the engine's name of each. */
export const engineQuotaKeys = { instances: 'instances', cores: 'cores', ram: 'ramMb' } as const;
/** A key the engine enforces. */
export type EngineQuotaKey = keyof typeof engineQuotaKeys;

/** Nova's quota keys the API keeps itself, with Nova's defaults (`-1`: unlimited). */
export const apiQuotaDefaults: Readonly<Record<string, number>> = {
  metadata_items: 128,
  key_pairs: 100,
  server_groups: 10,
  server_group_members: 10,
  injected_files: 5,
  injected_file_content_bytes: 10_240,
  injected_file_path_bytes: 255,
  fixed_ips: -1,
  floating_ips: -1,
  security_groups: -1,
  security_group_rules: -1,
};

const personalityKeys = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'];
const networkKeys = ['fixed_ips', 'floating_ips', 'security_groups', 'security_group_rules'];

/** The quota keys Nova shows at `v`: network ones below 2.36, personality ones below 2.57. */
export function quotaKeys(v: Microversion): string[] {
  return [
    ...Object.keys(engineQuotaKeys),
    ...Object.keys(apiQuotaDefaults).filter(
      (k) => !(atLeast(v, 36) && networkKeys.includes(k)) && !(atLeast(v, 57) && personalityKeys.includes(k)),
    ),
  ].sort();
}

/** The limits of the quota keys the API keeps (`compute_quota`), per project, over Nova's defaults. */
export class ApiQuotas {
  constructor(private readonly db: Kysely<ComputeResourceTables>) {}

  /** Every API-kept limit of a project: its own, or the default. */
  async limits(projectId: string): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('compute_quota')
      .selectAll()
      .where('project_id', '=', projectId)
      .execute();
    const out: Record<string, number> = { ...apiQuotaDefaults };
    for (const r of rows)
      if (Object.hasOwn(apiQuotaDefaults, r.resource)) out[r.resource] = Number(r.hard_limit);
    return out;
  }

  async set(projectId: string, limits: Readonly<Record<string, number>>): Promise<void> {
    for (const [resource, hard_limit] of Object.entries(limits)) {
      await this.db
        .insertInto('compute_quota')
        .values({ project_id: projectId, resource, hard_limit })
        .onConflict((oc) => oc.columns(['project_id', 'resource']).doUpdateSet({ hard_limit }))
        .execute();
    }
  }

  /** Back to the defaults. */
  async clear(projectId: string): Promise<void> {
    await this.db.deleteFrom('compute_quota').where('project_id', '=', projectId).execute();
  }
}
