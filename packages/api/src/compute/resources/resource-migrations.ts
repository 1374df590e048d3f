import type { Kysely, Migration } from 'kysely';
import { migrateModule } from '../../store/module-migrations.js';

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
  },
};

/** Stable integer ids (and uuids) of compute nodes and services. */
const hostIds: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_host_ids')
      .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('num', 'integer', (c) => c.notNull())
      .addColumn('uuid', 'varchar(36)', (c) => c.notNull())
      .addUniqueConstraint('compute_host_ids_kind_num', ['kind', 'num'])
      .execute();
  },
};

/** Host aggregates and their hosts. */
const aggregates: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_aggregate')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)')
      .execute();
    await db.schema
      .createTable('compute_aggregate_host')
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addColumn('host_id', 'varchar(255)', (c) => c.notNull())
      .addPrimaryKeyConstraint('compute_aggregate_host_pk', ['aggregate_id', 'host_id'])
      .execute();
  },
};

/** Limits of the quota keys the API keeps (the engine enforces instances, cores and RAM). */
const quotas: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_quota')
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('resource', 'varchar(64)', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('compute_quota_pk', ['project_id', 'resource'])
      .execute();
  },
};

/** The user and rules of server groups. */
const serverGroups: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_server_group_attrs')
      .addColumn('group_id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('rules', 'text', (c) => c.notNull())
      .execute();
  },
};

/** Key pairs per user. */
const keypairs: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('compute_keypair')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('type', 'varchar(8)', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addUniqueConstraint('compute_keypair_user_name', ['user_id', 'name'])
      .execute();
  },
};

const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_host_ids': hostIds,
  '0003_aggregates': aggregates,
  '0004_quotas': quotas,
  '0005_server_groups': serverGroups,
  '0006_keypairs': keypairs,
};
/**
 * Brings the compute resource tables up to date (Kysely's `Migrator` with its own migration table).
 * @throws Error naming the migration that failed
 */
export async function migrateComputeResources(db: Kysely<object>): Promise<void> {
  await migrateModule(db, { name: 'compute resource', table: computeMigrationTable, migrations });
}
