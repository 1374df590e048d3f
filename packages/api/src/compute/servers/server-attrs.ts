import type { Kysely, Migration } from 'kysely';
import { migrateModule } from '../../store/module-migrations.js';

/** API-only attributes of a server (Nova shows them; the engine does not keep them). */
export interface ServerAttrsRow {
  instance_id: string;
  description: string | null;
  key_name: string | null;
  /** Nova's `r-xxxxxxxx`, shared by the servers of one create request. */
  reservation_id: string;
  /** Position of the server in its create request. */
  launch_index: number;
  /** Base64 user data as given (admins see it from 2.3). */
  user_data: string | null;
}

/** The tables of the servers module. */
export type ServerTables = {
  compute_server_attrs: ServerAttrsRow;
};

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_server_attrs')
      .addColumn('instance_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('description', 'text')
      .addColumn('key_name', 'varchar(255)')
      .addColumn('reservation_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('launch_index', 'integer', (c) => c.notNull())
      .addColumn('user_data', 'text')
      .execute();
  },
};

/** Brings the servers module's tables up to date (its own migration table). */
export async function migrateServers(db: Kysely<object>): Promise<void> {
  await migrateModule(db, {
    name: 'compute servers',
    table: 'compute_servers_migration',
    migrations: { '0001_initial': initial },
  });
}

/** The reservation id of a server created alone without API attributes (it has no row). */
export function defaultReservationId(instanceId: string): string {
  return `r-${instanceId.replace(/-/g, '').slice(0, 8)}`;
}

/**
 * Reads and writes the API-only server attributes. A server created alone, without description,
 * key name or user data, has no row (its attributes are the defaults).
 */
export class ServerAttrs {
  private readonly db: Kysely<ServerTables>;

  constructor(db: Kysely<object>) {
    this.db = db.withTables<ServerTables>() as unknown as Kysely<ServerTables>;
  }

  /** The attributes of these servers, by instance id (one query). */
  async many(ids: readonly string[]): Promise<Map<string, ServerAttrsRow>> {
    const out = new Map<string, ServerAttrsRow>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      if (chunk.length === 0) break;
      const rows = await this.db
        .selectFrom('compute_server_attrs')
        .selectAll()
        .where('instance_id', 'in', chunk)
        .execute();
      for (const r of rows) out.set(r.instance_id, r);
    }
    return out;
  }

  async one(id: string): Promise<ServerAttrsRow | undefined> {
    return this.db
      .selectFrom('compute_server_attrs')
      .selectAll()
      .where('instance_id', '=', id)
      .executeTakeFirst();
  }

  /** Records the attributes of new servers; a retried request (same ids) keeps the first. */
  async add(rows: readonly ServerAttrsRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db
      .insertInto('compute_server_attrs')
      .values([...rows])
      .onConflict((oc) => oc.column('instance_id').doNothing())
      .execute();
  }

  /** Sets a server's description, making its row if it has none. */
  async setDescription(id: string, description: string | null): Promise<void> {
    await this.db
      .insertInto('compute_server_attrs')
      .values({
        instance_id: id,
        description,
        key_name: null,
        reservation_id: defaultReservationId(id),
        launch_index: 0,
        user_data: null,
      })
      .onConflict((oc) => oc.column('instance_id').doUpdateSet({ description }))
      .execute();
  }

  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('compute_server_attrs').where('instance_id', '=', id).execute();
  }
}
