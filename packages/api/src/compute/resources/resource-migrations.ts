import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';

/** The migration table of the compute resource routes (their own, beside the engine's and identity's). */
export const computeMigrationTable = 'compute_api_migration';

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_flavor_attrs')
      .addColumn('flavor_id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('description', 'text')
      .addColumn('is_public', 'integer', (c) => c.notNull())
      .addColumn('swap', 'integer', (c) => c.notNull())
      .addColumn('ephemeral', 'integer', (c) => c.notNull())
      .addColumn('rxtx_factor', 'double precision', (c) => c.notNull())
      .addColumn('disabled', 'integer', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('compute_flavor_access')
      .addColumn('flavor_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addPrimaryKeyConstraint('compute_flavor_access_pk', ['flavor_id', 'project_id'])
      .execute();
    await db.schema
      .createTable('compute_aggregate')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('availability_zone', 'varchar(255)')
      .addColumn('hosts', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)')
      .execute();
    await db.schema
      .createTable('compute_server_group_attrs')
      .addColumn('group_id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('rules', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('compute_quota_extra')
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('resource', 'varchar(64)', (c) => c.notNull())
      .addColumn('hard_limit', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('compute_quota_extra_pk', ['project_id', 'resource'])
      .execute();
    await db.schema
      .createTable('compute_keypair')
      .addColumn('id', 'integer', (c) => c.notNull().unique())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('type', 'varchar(16)', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('compute_keypair_pk', ['user_id', 'name'])
      .execute();
    await db.schema
      .createTable('compute_host_number')
      .addColumn('host_id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('num', 'integer', (c) => c.notNull().unique())
      .execute();
  },
};

const migrations: Record<string, Migration> = { '0001_initial': initial };
const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Brings the compute resource tables up to date (Kysely's `Migrator` with its own migration table).
 * @throws Error naming the migration that failed
 */
export async function migrateComputeResources(db: Kysely<object>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: computeMigrationTable,
    migrationLockTableName: `${computeMigrationTable}_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`compute resource migration ${failed} failed`, { cause: error });
  }
}
