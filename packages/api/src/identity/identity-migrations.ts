import { type Kysely, type Migration, sql } from 'kysely';
import { migrateModule } from '../store/module-migrations.js';

/** The migration table of the identity service (its own, beside the engine's). */
export const identityMigrationTable = 'identity_migration';

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('identity_domain')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('identity_project')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('domain_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('identity_project_name_domain', ['domain_id', 'name'])
      .execute();
    await db.schema
      .createTable('identity_user')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('domain_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('email', 'varchar(255)')
      .addColumn('description', 'text')
      .addColumn('default_project_id', 'varchar(64)')
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('password_hash', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('identity_user_name_domain', ['domain_id', 'name'])
      .execute();
    await db.schema
      .createTable('identity_group')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('domain_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addUniqueConstraint('identity_group_name_domain', ['domain_id', 'name'])
      .execute();
    await db.schema
      .createTable('identity_group_member')
      .addColumn('group_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addPrimaryKeyConstraint('identity_group_member_pk', ['group_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('identity_group_member_user')
      .on('identity_group_member')
      .column('user_id')
      .execute();
    await db.schema
      .createTable('identity_role')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('identity_assignment')
      .addColumn('actor_type', 'varchar(8)', (c) => c.notNull())
      .addColumn('actor_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('target_type', 'varchar(8)', (c) => c.notNull())
      .addColumn('target_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('role_id', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('identity_assignment_pk', [
        'actor_type',
        'actor_id',
        'target_type',
        'target_id',
        'role_id',
      ])
      .execute();
    await db.schema
      .createIndex('identity_assignment_target')
      .on('identity_assignment')
      .columns(['target_type', 'target_id'])
      .execute();
    await db.schema
      .createTable('identity_signing_key')
      .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('state', 'varchar(16)', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('identity_revocation')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(8)', (c) => c.notNull())
      .addColumn('value', 'varchar(255)', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await sql`insert into identity_domain (id, name, description, enabled) values ('default', 'Default', 'The default domain', 1)`.execute(
      db,
    );
  },
};

const migrations: Record<string, Migration> = { '0001_identity': initial };

/**
 * Brings the identity tables up to date (Kysely's `Migrator` with its own migration table).
 * @throws Error naming the migration that failed
 */
export async function migrateIdentity(db: Kysely<object>): Promise<void> {
  await migrateModule(db, { name: 'identity', table: identityMigrationTable, migrations });
}
