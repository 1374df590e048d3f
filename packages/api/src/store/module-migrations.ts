import { type Kysely, type Migration, Migrator } from 'kysely';

/**
 * Brings one API module's tables up to date in the API database: Kysely's `Migrator` with the
 * module's own migration table (and lock table), so modules migrate independently of each other
 * and of the engine's store.
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
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`${module.name} migration ${failed} failed`, { cause: error });
  }
}
