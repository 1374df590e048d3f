import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Instance, type InstanceFilter, NotFoundError, type VmState } from '@nova-lfs/core';
import { type InstanceStore, MemoryInstanceStore } from '@nova-lfs/core/ports';
import { buildTestInstance } from '@nova-lfs/core/testing';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrationsFor } from './migrations.js';
import { openPostgresStores, openSqliteStores, type SqlStores } from './open-stores.js';
import type { Database } from './schema.js';
import { dropSchema, freshSchema, freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const kinds = [
  ['memory', true],
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

const states: VmState[] = ['active', 'stopped', 'error', 'building'];

/** 30 instances in two projects, several created at one instant (ids then decide the order). */
function population(): Instance[] {
  return Array.from({ length: 30 }, (_, k) =>
    buildTestInstance({
      projectId: k % 3 === 0 ? 'other' : 'p',
      name: k % 4 === 0 ? `Web-${k}` : `db-${k}`,
      vmState: states[k % states.length]!,
      createdAt: 1_000 + Math.floor(k / 4) * 10,
      updatedAt: 5_000 + k,
    }),
  );
}

const sorted = (list: readonly Instance[]) =>
  [...list].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

async function pages(store: InstanceStore, filter: InstanceFilter, limit: number): Promise<Instance[][]> {
  const out: Instance[][] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await store.list({ ...filter, limit, ...(marker ? { marker } : {}) });
    if (page.length === 0) return out;
    out.push(page);
    marker = page.at(-1)!.id;
  }
}

async function open(
  kind: 'memory' | 'sqlite' | 'postgres',
): Promise<{ store: InstanceStore; close(): Promise<void> }> {
  if (kind === 'memory') return { store: new MemoryInstanceStore(), close: async () => undefined };
  const s = await freshStores(kind);
  return { store: s.stores.instances, close: () => s.close() };
}

for (const [kind, enabled] of kinds) {
  describe.skipIf(!enabled)(`instance list pages on ${kind}`, () => {
    it('sorts by (createdAt, id); pages by limit and marker concatenate to the full list; filters combine', async () => {
      const { store, close } = await open(kind);
      try {
        const all = population();
        for (const i of [...all].reverse()) await store.insert(i);
        expect(await store.list()).toEqual(sorted(all));
        const full = await pages(store, {}, 7);
        expect(full.map((p) => p.length)).toEqual([7, 7, 7, 7, 2]);
        expect(full.flat()).toEqual(sorted(all));

        const filters: Array<[InstanceFilter, (i: Instance) => boolean]> = [
          [{ projectId: 'p' }, (i) => i.projectId === 'p'],
          [{ status: ['active', 'error'] }, (i) => i.vmState === 'active' || i.vmState === 'error'],
          [{ status: [] }, () => false],
          [{ name: 'WEB' }, (i) => i.name.toLowerCase().includes('web')],
          [{ name: 'b-1' }, (i) => i.name.includes('b-1')],
          [{ name: '%' }, () => false],
          [{ changesSince: 5_020 }, (i) => i.updatedAt >= 5_020],
          [
            { projectId: 'p', status: ['stopped', 'building'], changesSince: 5_003 },
            (i) => i.projectId === 'p' && ['stopped', 'building'].includes(i.vmState) && i.updatedAt >= 5_003,
          ],
        ];
        for (const [filter, keep] of filters) {
          const expected = sorted(all.filter(keep));
          expect(await store.list(filter)).toEqual(expected);
          expect((await pages(store, filter, 3)).flat()).toEqual(expected);
        }
        // a marker the filter leaves out still places the page
        const s = sorted(all);
        expect(await store.list({ projectId: 'p', marker: s[0]!.id, limit: 2 })).toEqual(
          s.filter((i) => i.projectId === 'p' && i !== s[0]).slice(0, 2),
        );
        expect(await store.list({ limit: 0 })).toEqual([]);
        expect(await store.list({ marker: s.at(-1)!.id })).toEqual([]);
      } finally {
        await close();
      }
    });

    it('refuses an unknown marker with NotFoundError naming the field', async () => {
      const { store, close } = await open(kind);
      try {
        await store.insert(buildTestInstance());
        const err = await store
          .list({ marker: '00000000-0000-7000-8000-000000000000' })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NotFoundError);
        expect((err as NotFoundError).details).toEqual({
          kind: 'instance',
          id: '00000000-0000-7000-8000-000000000000',
          field: 'marker',
        });
      } finally {
        await close();
      }
    });
  });
}

describe('instance list on an upgraded database', () => {
  const old = population().slice(0, 6);
  /** Writes rows and events as schema 0002 had them. */
  async function writeOld(db: Kysely<Database>): Promise<void> {
    for (const i of old) {
      await db
        .insertInto('instances')
        .values({
          id: i.id,
          project_id: i.projectId,
          host_id: i.hostId,
          task_state: i.taskState,
          revision: i.revision,
          data: JSON.stringify(i),
        } as never)
        .execute();
    }
    const gone = old[5]!;
    await db.deleteFrom('instances').where('id', '=', gone.id).execute();
    for (const [instanceId, type, data] of [
      [old[0]!.id, 'instance.deleted', { type: 'instance.deleted', instanceId: old[0]!.id, at: 1 }],
      [gone.id, 'instance.created', { type: 'instance.created', instanceId: gone.id, at: 2, instance: gone }],
      [gone.id, 'instance.deleted', { type: 'instance.deleted', instanceId: gone.id, at: 3 }],
    ] as const) {
      await db
        .insertInto('instance_events')
        .values({ instance_id: instanceId, type, at: data.at, data: JSON.stringify(data) } as never)
        .execute();
    }
  }

  async function check(s: SqlStores): Promise<void> {
    expect(await s.stores.instances.list()).toEqual(sorted(old.slice(0, 5)));
    expect(await s.stores.instances.list({ name: 'web', status: ['active'] })).toEqual(
      sorted(old.slice(0, 5).filter((i) => /web/i.test(i.name) && i.vmState === 'active')),
    );
    // events kept their numbers and got their instances' projects; new ones follow them
    expect((await s.stores.events.read(0, 10, { projectId: old[0]!.projectId })).map((e) => e.seq)).toEqual([
      1,
    ]);
    expect((await s.stores.events.read(0, 10, { projectId: old[5]!.projectId })).map((e) => e.seq)).toEqual(
      old[5]!.projectId === old[0]!.projectId ? [1, 2, 3] : [2, 3],
    );
    const [next] = await s.stores.unit.commit([
      { kind: 'event', event: { type: 'instance.deleted', instanceId: old[1]!.id, at: 4 } },
    ]);
    expect(next!.seq).toBe(4);
  }

  const first2 = (dialect: 'sqlite' | 'postgres') => {
    const all = migrationsFor(dialect);
    return { '0001_initial': all['0001_initial']!, '0002_write_path': all['0002_write_path']! };
  };

  it('on SQLite: backfills the list columns and the events projects', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-upgrade-')), 'db.sqlite');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => first2('sqlite') },
      migrationTableName: 'nlfs_migration',
      migrationLockTableName: 'nlfs_migration_lock',
    });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    await writeOld(db);
    await db.destroy();
    const s = await openSqliteStores({ path });
    try {
      await check(s);
    } finally {
      await s.close();
    }
  });

  it.skipIf(!postgresAvailable)(
    'on PostgreSQL: backfills the list columns and the events projects',
    async () => {
      const schema = freshSchema();
      const pool = new pg.Pool({ connectionString: pgUrl, max: 2, options: `-c search_path=${schema}` });
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
      try {
        await db.schema.createSchema(schema).execute();
        const migrator = new Migrator({
          db,
          provider: { getMigrations: async () => first2('postgres') },
          migrationTableName: 'nlfs_migration',
          migrationLockTableName: 'nlfs_migration_lock',
          migrationTableSchema: schema,
        });
        expect((await migrator.migrateToLatest()).error).toBeUndefined();
        await writeOld(db);
      } finally {
        await db.destroy();
      }
      const s = await openPostgresStores({ url: pgUrl, schema });
      try {
        await check(s);
      } finally {
        await s.close();
        await dropSchema(schema);
      }
    },
  );
});

describe('migration 0007_without_rowid (SQLite)', () => {
  const through0006 = () => {
    const all = migrationsFor('sqlite');
    return Object.fromEntries(Object.entries(all).filter(([name]) => name < '0007'));
  };

  it('rebuilds instances, claims and host usage WITHOUT ROWID with their rows and indexes, and drops the unused task index', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-0007-')), 'db.sqlite');
    const handle = new BetterSqlite3(path);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => through0006() },
      migrationTableName: 'nlfs_migration',
      migrationLockTableName: 'nlfs_migration_lock',
    });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const vms = population();
    for (const vm of vms) {
      await db
        .insertInto('instances')
        .values({
          id: vm.id,
          project_id: vm.projectId,
          host_id: vm.hostId,
          task_state: vm.taskState,
          vm_state: vm.vmState,
          name: vm.name,
          created_at: vm.createdAt,
          updated_at: vm.updatedAt,
          revision: vm.revision,
          data: JSON.stringify(vm),
        })
        .execute();
    }
    await db
      .insertInto('claims')
      // group_id (migration 0004) is not in the schema's type
      .values({ id: 'c1', instance_id: vms[0]!.id, host_id: 'h1', data: '{"x":1}', group_id: 'g' } as never)
      .execute();
    await db.insertInto('host_usage').values({ host_id: 'h1', resource_class: 'VCPU', used: 3 }).execute();
    const before = {
      instances: await db.selectFrom('instances').selectAll().orderBy('id').execute(),
      claims: await db.selectFrom('claims').selectAll().execute(),
      usage: await db.selectFrom('host_usage').selectAll().execute(),
    };
    const indexesOf = (table: string) =>
      (
        handle
          .prepare("select name from sqlite_master where type = 'index' and tbl_name = ? and sql is not null")
          .all(table) as Array<{ name: string }>
      )
        .map((r) => r.name)
        .sort();
    const indexesBefore = Object.fromEntries(
      ['instances', 'claims', 'host_usage'].map((t) => [t, indexesOf(t)] as const),
    );
    await db.destroy();

    const s = await openSqliteStores({ path });
    try {
      const { rows: tables } = await s.database.exec.run<{ name: string; sql: string }>({
        sql: "select name, sql from sqlite_master where type = 'table' and name in ('instances', 'claims', 'host_usage') order by name",
        parameters: [],
      });
      expect(tables.map((t) => t.name)).toEqual(['claims', 'host_usage', 'instances']);
      for (const t of tables) expect(t.sql).toMatch(/\) without rowid$/i);
      const { rows: indexes } = await s.database.exec.run<{ tbl_name: string; name: string }>({
        sql: "select tbl_name, name from sqlite_master where type = 'index' and sql is not null and tbl_name in ('instances', 'claims', 'host_usage') order by name",
        parameters: [],
      });
      const after = (t: string) => indexes.filter((i) => i.tbl_name === t).map((i) => i.name);
      expect(after('instances')).toEqual(indexesBefore.instances!.filter((n) => n !== 'instances_with_task'));
      expect(indexesBefore.instances).toContain('instances_with_task');
      expect(after('claims')).toEqual(indexesBefore.claims);
      expect(after('host_usage')).toEqual(indexesBefore.host_usage);
      const rows = async (q: string) => (await s.database.exec.run({ sql: q, parameters: [] })).rows;
      expect(await rows('select * from instances order by id')).toEqual(before.instances);
      expect(await rows('select * from claims')).toEqual(before.claims);
      expect(await rows('select * from host_usage')).toEqual(before.usage);
      // the stores read and write the rebuilt tables
      expect(await s.stores.instances.list()).toEqual(sorted(vms));
      expect(await s.stores.instances.list({ withTask: true })).toEqual(
        sorted(vms.filter((v) => v.taskState !== null)),
      );
      const first = vms[0]!;
      const updated = await s.stores.instances.update(first.id, first.revision, { name: 'renamed' }, 9_999);
      expect(await s.stores.instances.get(first.id)).toEqual(updated);
      await s.stores.instances.remove(first.id);
      expect(await s.stores.instances.get(first.id)).toBeUndefined();
    } finally {
      await s.close();
    }
    // opening again (the migration recorded) changes nothing
    const again = await openSqliteStores({ path });
    try {
      expect((await again.stores.instances.list()).length).toBe(vms.length - 1);
    } finally {
      await again.close();
    }
  });

  it('completes a rebuild interrupted after some tables (a table already rebuilt is left alone)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-0007-')), 'db.sqlite');
    const handle = new BetterSqlite3(path);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => through0006() },
      migrationTableName: 'nlfs_migration',
      migrationLockTableName: 'nlfs_migration_lock',
    });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const vm = buildTestInstance({ projectId: 'p' });
    // as if 0007 had rebuilt `instances` and stopped before the other tables and its record
    handle.exec(`create table nlfs_rebuild_instances ("id" text primary key, "project_id" text not null, "host_id" text, "task_state" text, "revision" integer not null, "data" text not null, "created_at" bigint, "updated_at" bigint, "vm_state" text, "name" text) without rowid;
      drop table instances; alter table nlfs_rebuild_instances rename to instances;
      create index instances_host on instances (host_id);
      create index instances_created on instances (created_at, id);
      create index instances_project_created on instances (project_id, created_at, id);`);
    handle
      .prepare(
        'insert into instances (id, project_id, host_id, task_state, vm_state, name, created_at, updated_at, revision, data) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        vm.id,
        vm.projectId,
        vm.hostId,
        vm.taskState,
        vm.vmState,
        vm.name,
        vm.createdAt,
        vm.updatedAt,
        0,
        JSON.stringify(vm),
      );
    await db.destroy();
    const s = await openSqliteStores({ path });
    try {
      expect(await s.stores.instances.get(vm.id)).toEqual(vm);
      const { rows } = await s.database.exec.run<{ n: number }>({
        sql: "select count(*) as n from sqlite_master where type = 'table' and sql like '%without rowid'",
        parameters: [],
      });
      expect(rows[0]!.n).toBe(3);
    } finally {
      await s.close();
    }
  });
});
