import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { SchemaTooNewError } from './errors.js';
import type { Database } from './schema.js';

/** SQL dialect in use. */
export type Dialect = 'sqlite' | 'postgres';

function initial(dialect: Dialect): Migration {
  const seq = dialect === 'postgres' ? 'bigserial' : 'integer';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      const auto = (c: import('kysely').ColumnDefinitionBuilder) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement();
      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('host_id', 'text')
        .addColumn('task_state', 'text')
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instances_project').on('instances').column('project_id').execute();
      await db.schema.createIndex('instances_host').on('instances').column('host_id').execute();
      await db.schema.createIndex('instances_task').on('instances').column('task_state').execute();
      await db.schema
        .createTable('hosts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('host_generations')
        .addColumn('host_id', 'text', (c) => c.primaryKey())
        .addColumn('generation', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('host_usage')
        .addColumn('host_id', 'text', (c) => c.notNull())
        .addColumn('resource_class', 'text', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('host_usage_pk', ['host_id', 'resource_class'])
        .execute();
      await db.schema
        .createTable('claims')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('host_id', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('claims_instance').on('claims').column('instance_id').execute();
      await db.schema.createIndex('claims_host').on('claims').column('host_id').execute();
      await db.schema
        .createTable('instance_actions')
        .addColumn('seq', seq, auto)
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('actions_instance')
        .on('instance_actions')
        .columns(['instance_id', 'seq'])
        .execute();
      await db.schema.createIndex('actions_result').on('instance_actions').column('result').execute();
      await db.schema
        .createTable('instance_events')
        .addColumn('seq', seq, auto)
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('events_instance')
        .on('instance_events')
        .columns(['instance_id', 'seq'])
        .execute();
      await db.schema
        .createTable('flavors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('server_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_limits')
        .addColumn('project_id', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_usage')
        .addColumn('project_id', 'text', (c) => c.primaryKey())
        .addColumn('instances', 'integer', (c) => c.notNull())
        .addColumn('cores', 'integer', (c) => c.notNull())
        .addColumn('ram_mb', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_reservations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('instances', 'integer', (c) => c.notNull())
        .addColumn('cores', 'integer', (c) => c.notNull())
        .addColumn('ram_mb', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      void sql;
    },
  };
}

/**
 * Write-path columns: an action's outcome in its own columns (finishing it is one update), the
 * reserved quota summed in the project's usage row (admission is one conditional update), and
 * partial indexes for pending actions and instances with a task.
 */
const writePath: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('instance_actions').addColumn('finished_at', 'bigint').execute();
    await db.schema.alterTable('instance_actions').addColumn('fault', 'text').execute();
    for (const [column, type] of [
      ['reserved_instances', 'integer'],
      ['reserved_cores', 'integer'],
      ['reserved_ram_mb', 'bigint'],
    ] as const) {
      await db.schema
        .alterTable('quota_usage')
        .addColumn(column, type, (c) => c.notNull().defaultTo(0))
        .execute();
    }
    const sum = (c: string) =>
      sql.raw(
        `(select coalesce(sum(r.${c}), 0) from quota_reservations r where r.project_id = quota_usage.project_id)`,
      );
    await sql`update quota_usage set reserved_instances = ${sum('instances')}, reserved_cores = ${sum('cores')}, reserved_ram_mb = ${sum('ram_mb')}`.execute(
      db,
    );
    // partial indexes: only pending actions and instances with a task are ever looked up by
    // those columns, and every state change would otherwise move an index entry
    await db.schema.dropIndex('actions_result').execute();
    await sql`create index actions_pending on instance_actions (seq) where result = 'pending'`.execute(db);
    await db.schema.dropIndex('instances_task').execute();
    await sql`create index instances_with_task on instances (id) where task_state is not null`.execute(db);
  },
};

/**
 * Units of work, the durable event log, leases and list paging:
 * - instances get `created_at`, `updated_at`, `vm_state` and `name` columns (backfilled from the
 *   JSON) and indexes on `(created_at, id)` and `(project_id, created_at, id)` for sorted pages;
 * - events get their instance's `project_id` (indexed with `seq`) and, on PostgreSQL, a counter
 *   row (`instance_event_head`) that hands out sequence numbers in commit order;
 * - `leases` (who owns a host until when);
 * - on PostgreSQL, two functions that raise a typed precondition failure from inside a statement,
 *   so a unit of work sent as one batch aborts its own transaction (SQLSTATE `NLF01` revision
 *   conflict, `NLF02` not found, `NLF03` duplicate; DETAIL is a JSON object naming the record).
 */
function unitsAndPaging(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const [column, type] of [
        ['created_at', 'bigint'],
        ['updated_at', 'bigint'],
        ['vm_state', 'text'],
        ['name', 'text'],
      ] as const) {
        await db.schema.alterTable('instances').addColumn(column, type).execute();
      }
      const field = (doc: string, path: string, type?: 'bigint') =>
        dialect === 'postgres'
          ? `(${doc}::json${path
              .split('.')
              .map((k, i, all) => `${i === all.length - 1 ? '->>' : '->'}'${k}'`)
              .join('')})${type ? `::${type}` : ''}`
          : `json_extract(${doc}, '$.${path}')`;
      await sql
        .raw(
          `update instances set created_at = ${field('data', 'createdAt', 'bigint')}, updated_at = ${field('data', 'updatedAt', 'bigint')}, vm_state = ${field('data', 'vmState')}, name = ${field('data', 'name')}`,
        )
        .execute(db);
      await db.schema.dropIndex('instances_project').execute();
      // ids sort byte-wise on both dialects (PostgreSQL's database collation may not)
      const id = dialect === 'postgres' ? 'id collate "C"' : 'id';
      await sql.raw(`create index instances_created on instances (created_at, ${id})`).execute(db);
      await sql
        .raw(`create index instances_project_created on instances (project_id, created_at, ${id})`)
        .execute(db);

      await db.schema.alterTable('instance_events').addColumn('project_id', 'text').execute();
      await sql
        .raw(
          `update instance_events set project_id = coalesce(
             (select i.project_id from instances i where i.id = instance_events.instance_id),
             (select ${field('c.data', 'instance.projectId')} from instance_events c
               where c.instance_id = instance_events.instance_id and c.type = 'instance.created' limit 1))`,
        )
        .execute(db);
      await db.schema
        .createIndex('events_project')
        .on('instance_events')
        .columns(['project_id', 'seq'])
        .execute();
      if (dialect === 'postgres') {
        // SQLite numbers events with AUTOINCREMENT under its single write lock: commit-ordered already
        await db.schema
          .createTable('instance_event_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .execute();
        await sql
          .raw(
            'insert into instance_event_head (id, seq) select 1, coalesce(max(seq), 0) from instance_events',
          )
          .execute(db);
      }

      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();

      if (dialect === 'postgres') {
        // every sequence number comes from the counter row now (a default would bypass it)
        await sql.raw('alter table instance_events alter column seq drop default').execute(db);
        await sql.raw(PRECONDITION_FUNCTIONS).execute(db);
      }
    },
  };
}

/** PostgreSQL functions a unit's statements call to fail their transaction (see {@link unitsAndPaging}). */
const PRECONDITION_FUNCTIONS = `
create or replace function nlfs_expect(p_matched bigint, p_code text, p_kind text, p_id text)
returns integer language plpgsql as $$
begin
  if p_matched = 0 then
    raise exception using errcode = p_code,
      message = format('%s %s: precondition failed', p_kind, p_id),
      detail = json_build_object('kind', p_kind, 'id', p_id)::text;
  end if;
  return p_matched;
end $$;

create or replace function nlfs_expect_revision(p_matched bigint, p_id text, p_expected integer)
returns integer language plpgsql as $$
declare
  v_revision integer;
begin
  if p_matched = 0 then
    select revision into v_revision from instances where id = p_id;
    if not found then
      raise exception using errcode = 'NLF02',
        message = format('instance %s not found', p_id),
        detail = json_build_object('kind', 'instance', 'id', p_id)::text;
    end if;
    raise exception using errcode = 'NLF01',
      message = format('instance %s changed concurrently (expected revision %s, found %s)', p_id, p_expected, v_revision),
      detail = json_build_object('kind', 'instance', 'id', p_id, 'expected', p_expected, 'actual', v_revision)::text;
  end if;
  return p_matched;
end $$;
`;

/**
 * Claims that hold across processes:
 * - `claims.group_id`: the server group of the claim's instance (indexed with the host), so that a
 *   claim checks hard group policies against every member's claim in its own transaction;
 * - on PostgreSQL, `claim_group_locks`: one row per group, locked by affinity claims so that two
 *   processes cannot claim the first member's host at once (anti-affinity needs only the host's
 *   generation row);
 * - `claim_changes`: the claims' change feed (one row per claim added or removed, `data` null for
 *   a removal). On PostgreSQL each row carries the writing transaction's id (`xid`): a reader
 *   takes the rows below the oldest transaction still running (its snapshot's xmin), all of
 *   which are committed, so none is skipped however transactions commit. On SQLite writers
 *   commit one at a time and `seq` is the order.
 * - `claim_feed`: one row (`id` 1) telling below which position changes may have been pruned.
 */
function claimFeed(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('claims').addColumn('group_id', 'text').execute();
      await sql
        .raw('create index claims_group on claims (group_id, host_id) where group_id is not null')
        .execute(db);
      if (dialect === 'postgres') {
        await sql.raw("update claims set group_id = cast(data as json) -> 'group' ->> 'id'").execute(db);
        await sql
          .raw('create table claim_group_locks (group_id text primary key, generation bigint not null)')
          .execute(db);
        await sql
          .raw(
            `create table claim_changes (
               seq bigserial primary key,
               xid xid8 not null default pg_current_xact_id(),
               claim_id text not null,
               host_id text not null,
               data text)`,
          )
          .execute(db);
        await sql.raw('create index claim_changes_xid on claim_changes (xid, seq)').execute(db);
        await sql
          .raw('create table claim_feed (id integer primary key, pruned_below xid8 not null)')
          .execute(db);
        await sql.raw("insert into claim_feed (id, pruned_below) values (1, '0')").execute(db);
        return;
      }
      await sql.raw("update claims set group_id = json_extract(data, '$.group.id')").execute(db);
      await sql
        .raw(
          `create table claim_changes (
             seq integer primary key autoincrement,
             claim_id text not null,
             host_id text not null,
             data text)`,
        )
        .execute(db);
      await sql
        .raw('create table claim_feed (id integer primary key, pruned_through integer not null)')
        .execute(db);
      await sql.raw('insert into claim_feed (id, pruned_through) values (1, 0)').execute(db);
    },
  };
}

/**
 * The image catalog: one row per image (its metadata as JSON, and where a registered image's
 * bytes are), indexed by sha256 (cached bytes are dropped when no image has them any more).
 */
const images: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('images')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('location', 'text')
      .execute();
    await db.schema.createIndex('images_sha256').on('images').column('sha256').execute();
  },
};

/**
 * Event rows: a row of `instance_events` holds a run of consecutive events of one instance
 * written by one unit of work (`event_count` of them, numbered up to the row's `seq`; its `data`
 * a JSON array when more than one). Existing rows hold one event each (`event_count` 1, `data`
 * the event's JSON object, as before), so they read on unchanged.
 */
const eventRows: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('instance_events')
      .addColumn('event_count', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();
  },
};

/**
 * Tables rebuilt `WITHOUT ROWID` on SQLite by {@link withoutRowid}: keyed by text and written by
 * every create+delete (a rowid table keeps such a key in a separate index, so each insert, delete
 * and lookup by key walks two b-trees).
 */
export const WITHOUT_ROWID_TABLES = ['instances', 'claims', 'host_usage'] as const;

/**
 * Indexes dropped by {@link withoutRowid} on SQLite: `instances_with_task` (`id` where a task is
 * set) is never chosen by SQLite's planner (`list({ withTask })` sorts by `(created_at, id)` and
 * scans `instances_created` instead; no statistics are gathered), yet every change of
 * `task_state` moved an entry in it.
 */
export const DROPPED_SQLITE_INDEXES = ['instances_with_task'] as const;

/**
 * SQLite only (PostgreSQL tables are heaps whatever their key; nothing changes there): the tables
 * of {@link WITHOUT_ROWID_TABLES} rebuilt as `WITHOUT ROWID` (rows stored in their primary key's
 * b-tree), same columns, rows and indexes, but {@link DROPPED_SQLITE_INDEXES}. Each table is
 * copied, dropped and renamed inside one savepoint (SQLite migrations run outside a
 * transaction), and a table already rebuilt is left alone, so a run interrupted between tables
 * or before the migration was recorded completes on the next open.
 */
function withoutRowid(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      if (dialect === 'postgres') return;
      for (const table of WITHOUT_ROWID_TABLES) {
        const { rows } = await sql<{ sql: string }>`select sql from sqlite_master
          where type = 'table' and name = ${table}`.execute(db);
        const ddl = rows[0]?.sql;
        if (!ddl) throw new Error(`migration 0007: table ${table} is missing`);
        if (/without\s+rowid\s*$/i.test(ddl)) continue;
        const indexes = (
          await sql<{ name: string; sql: string }>`select name, sql from sqlite_master
            where type = 'index' and tbl_name = ${table} and sql is not null order by name`.execute(db)
        ).rows.filter((i) => !(DROPPED_SQLITE_INDEXES as readonly string[]).includes(i.name));
        const prefix = /^create\s+table\s+("?)[A-Za-z_]+\1\s*\(/i.exec(ddl);
        if (!prefix) throw new Error(`migration 0007: cannot read the definition of ${table}`);
        const rebuilt = `nlfs_rebuild_${table}`;
        await sql.raw('savepoint nlfs_0007').execute(db);
        try {
          await sql.raw(`drop table if exists ${rebuilt}`).execute(db);
          await sql.raw(`create table ${rebuilt} (${ddl.slice(prefix[0].length)} without rowid`).execute(db);
          // same columns in the same order (the definition was copied)
          await sql.raw(`insert into ${rebuilt} select * from "${table}"`).execute(db);
          await sql.raw(`drop table "${table}"`).execute(db);
          await sql.raw(`alter table ${rebuilt} rename to "${table}"`).execute(db);
          for (const index of indexes) await sql.raw(index.sql).execute(db);
          await sql.raw('release nlfs_0007').execute(db);
        } catch (e) {
          await sql.raw('rollback to nlfs_0007').execute(db);
          await sql.raw('release nlfs_0007').execute(db);
          throw e;
        }
      }
      for (const index of DROPPED_SQLITE_INDEXES) await sql.raw(`drop index if exists ${index}`).execute(db);
    },
  };
}

/**
 * Migration records (issue 15): one row per move of an instance (live, cold, resize, evacuation),
 * the record as JSON with its instance, status, kind and creation time beside it for filters.
 */
const migrationRecords: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('migrations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('migrations_instance')
      .on('migrations')
      .columns(['instance_id', 'created_at'])
      .execute();
    await db.schema.createIndex('migrations_status').on('migrations').column('status').execute();
  },
};

/** The migrations this version knows, in order. The last one's name is the schema version. */
export function migrationsFor(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': initial(dialect),
    '0002_write_path': writePath,
    '0003_units_and_paging': unitsAndPaging(dialect),
    '0004_claim_feed': claimFeed(dialect),
    '0005_images': images,
    '0006_event_rows': eventRows,
    '0007_without_rowid': withoutRowid(dialect),
    '0008_migrations': migrationRecords,
  };
}

class InCodeMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrationsFor(this.dialect);
  }
}

/**
 * Applies pending migrations (recorded by Kysely's migrator in `nlfs_migration`). Refuses a
 * database that has migrations this code does not know.
 * @throws SchemaTooNewError
 */
export async function migrate(
  db: Kysely<Database>,
  dialect: Dialect,
  databaseName: string,
  pgSchema?: string,
): Promise<string> {
  const migrator = new Migrator({
    db,
    provider: new InCodeMigrations(dialect),
    migrationTableName: 'nlfs_migration',
    migrationLockTableName: 'nlfs_migration_lock',
    ...(dialect === 'postgres' ? { migrationTableSchema: pgSchema ?? 'public' } : {}),
  });
  const known = new Set(Object.keys(migrationsFor(dialect)));
  await despiteDroppedSchemas(async () => {
    const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
    const here = (t: { name: string; schema?: string }) =>
      t.name === 'nlfs_migration' && (dialect === 'sqlite' || t.schema === (pgSchema ?? 'public'));
    if (tables.some(here)) {
      const rows = await (db as unknown as Kysely<{ nlfs_migration: { name: string } }>)
        .selectFrom('nlfs_migration')
        .select('name')
        .execute();
      const unknown = rows.map((r) => r.name).filter((n) => !known.has(n));
      if (unknown.length) throw new SchemaTooNewError(databaseName, unknown);
    }
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
  });
  return [...known].at(-1)!;
}

/** Tries of {@link despiteDroppedSchemas}. */
const DROPPED_SCHEMA_TRIES = 5;

/**
 * Runs `fn` again when PostgreSQL says a schema does not exist (SQLSTATE 3F000). Kysely's
 * introspection (which its migrator runs) lists the tables of every schema and resolves each by
 * name, so another session dropping an unrelated schema meanwhile fails it; nothing was migrated
 * then (PostgreSQL migrations run in one transaction), so running it again is safe.
 */
async function despiteDroppedSchemas(fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= DROPPED_SCHEMA_TRIES || (e as { code?: unknown }).code !== '3F000') throw e;
    }
  }
}
