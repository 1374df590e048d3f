import type { MigrationFilter, MigrationRecord } from '@nova-lfs/core';
import type { MigrationStore } from '@nova-lfs/core/ports';
import type { Kysely } from 'kysely';
import type { SqlDatabase } from './database.js';
import type { Database } from './schema.js';

/** A row of the `migrations` table (migration `0008_migrations`): the record as JSON, filter columns beside. */
interface MigrationRow {
  id: string;
  instance_id: string;
  status: string;
  kind: string;
  created_at: number;
  /** The record (JSON). */
  data: string;
}

type MigrationDatabase = Database & { migrations: MigrationRow };

/**
 * {@link MigrationStore} on SQL (table `migrations`): one row per move, kept after the instance
 * is gone (as Nova keeps its migration records), filtered by instance, status and kind in SQL.
 */
export class SqlMigrationStore implements MigrationStore {
  private readonly db: Kysely<MigrationDatabase>;

  constructor(private readonly database: SqlDatabase) {
    this.db = database.db.withTables<{ migrations: MigrationRow }>();
  }

  async put(record: MigrationRecord): Promise<void> {
    const data = JSON.stringify(record);
    const row = {
      id: record.id,
      instance_id: record.instanceId,
      status: record.status,
      kind: record.kind,
      created_at: record.createdAt,
      data,
    };
    await this.database.exec.run(
      this.db
        .insertInto('migrations')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet({ status: record.status, data }))
        .compile(),
    );
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    const q = this.db.selectFrom('migrations').select('data').where('id', '=', id);
    const [row] = (await this.database.exec.run<{ data: string }>(q.compile())).rows;
    return row ? (JSON.parse(row.data) as MigrationRecord) : undefined;
  }

  async list(filter: MigrationFilter = {}): Promise<MigrationRecord[]> {
    let q = this.db.selectFrom('migrations').select('data');
    if (filter.instanceId !== undefined) q = q.where('instance_id', '=', filter.instanceId);
    if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
    if (filter.status !== undefined) {
      const wanted = typeof filter.status === 'string' ? [filter.status] : [...filter.status];
      if (wanted.length === 0) return [];
      q = q.where('status', 'in', wanted);
    }
    q = q.orderBy('created_at').orderBy('id');
    return (await this.database.exec.run<{ data: string }>(q.compile())).rows.map(
      (r) => JSON.parse(r.data) as MigrationRecord,
    );
  }
}
