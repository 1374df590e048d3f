import type { Kysely, Migration } from 'kysely';
import { migrateModule } from '../store/module-migrations.js';
import type { ImageTables } from './image-tables.js';

/** The migration table of the image module (its own, beside the engine's and the other modules'). */
export const imageMigrationTable = 'image_migration';

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('image_record')
      .addColumn('id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('owner', 'varchar(255)')
      .addColumn('visibility', 'varchar(16)', (c) => c.notNull())
      .addColumn('protected', 'integer', (c) => c.notNull())
      .addColumn('os_hidden', 'integer', (c) => c.notNull())
      .addColumn('min_disk', 'integer', (c) => c.notNull())
      .addColumn('min_ram', 'integer', (c) => c.notNull())
      .addColumn('disk_format', 'varchar(32)')
      .addColumn('container_format', 'varchar(32)')
      .addColumn('checksum', 'varchar(32)')
      .addColumn('tags', 'text', (c) => c.notNull())
      .addColumn('properties', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

const migrations: Record<string, Migration> = { '0001_initial': initial };
const done = new WeakMap<Kysely<object>, Promise<void>>();

/**
 * Brings the image tables up to date (Kysely's `Migrator` with its own migration table), once
 * per database handle however many callers ask.
 * @throws Error naming the migration that failed (a later call tries again)
 */
export function migrateImageTables(db: Kysely<object>): Promise<void> {
  let pending = done.get(db);
  if (!pending) {
    pending = migrateModule(db, { name: 'image', table: imageMigrationTable, migrations });
    done.set(db, pending);
    pending.catch(() => done.delete(db));
  }
  return pending;
}

/** The API database viewed with the image tables. */
export function imageDb(db: Kysely<object>): Kysely<ImageTables> {
  return db.withTables<ImageTables>() as unknown as Kysely<ImageTables>;
}
