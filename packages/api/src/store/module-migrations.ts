import { type Kysely, type Migration, Migrator, PostgresAdapter, sql } from 'kysely';

/**
 * Brings one API module's tables up to date in the API database: Kysely's `Migrator` with the
 * module's own migration table (and lock table), so modules migrate independently of each other
 * and of the engine's store. On PostgreSQL the migration tables are looked for in the
 * connection's current schema (its `search_path`): without it, Kysely finds a module's table in
 * any schema, and a fresh schema beside another one already migrated fails with "relation does
 * not exist" (several clouds, or test runs, on one database).
 * @throws Error naming the module and the migration that failed (the cause attached)
 */
export async function migrateModule(
  db: Kysely<object>,
  module: { readonly name: string; readonly table: string; readonly migrations: Record<string, Migration> },
): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => module.migrations },
    migrationTableName: module.table,
    migrationLockTableName: `${module.table}_lock`,
    ...(await currentPgSchema(db)),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`${module.name} migration ${failed} failed`, { cause: error });
  }
}

/** `{ migrationTableSchema }` of a PostgreSQL connection (its current schema); nothing on SQLite. */
async function currentPgSchema(db: Kysely<object>): Promise<{ migrationTableSchema?: string }> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return {};
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return rows[0]?.schema ? { migrationTableSchema: rows[0].schema } : {};
}
