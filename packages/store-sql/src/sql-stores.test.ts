import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ClaimConflictError,
  createCompute,
  type Host,
  hostSchema,
  QuotaExceededError,
  RevisionConflictError,
} from '@nova-lfs/core';
import { buildTestInstance, FakeDriver } from '@nova-lfs/core/testing';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openPostgres, openSqlite } from './database.js';
import { DatabaseUnavailableError, SchemaTooNewError } from './errors.js';
import { migrationsFor } from './migrations.js';
import { openSqliteStores } from './open-stores.js';
import type { Database } from './schema.js';
import { freshStores, postgresAvailable } from './sql-env.test-helper.js';

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

const host = (id: string, vcpus: number): Host =>
  hostSchema.parse({
    id,
    name: id,
    hypervisorType: 'fake',
    inventory: { VCPU: { total: vcpus }, MEMORY_MB: { total: 65536 } },
  });

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SQL stores on ${dialect}`, () => {
    it('records the schema version and runs the engine on durable stores, with actions and events in order', async () => {
      const s = await freshStores(dialect);
      try {
        expect(s.database.schemaVersion).toBe(Object.keys(migrationsFor(dialect)).at(-1));
        const compute = await createCompute({
          stores: s.stores,
          quota: s.quota,
          flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
          hosts: [{ id: 'h1', driver: new FakeDriver() }],
        });
        const rec = s.events.record(compute.events$);
        await compute.images.register(
          { id: 'img', name: 'img', diskFormat: 'raw', sha256: '1'.repeat(64) },
          { kind: 'bytes', bytes: new Uint8Array() },
        );
        const [vm] = await compute.create({
          name: 'a<&>',
          projectId: 'p',
          userId: 'u',
          flavorId: 'm1',
          imageId: 'img',
        });
        expect(vm).toMatchObject({ vmState: 'active', name: 'a<&>' });
        expect(await s.stores.instances.get(vm!.id)).toEqual(vm);
        await compute.reboot(vm!.id, 'hard');
        expect((await s.quota.usage('p')).inUse).toEqual({ instances: 1, cores: 1, ramMb: 512 });
        await compute.delete(vm!.id);
        expect((await s.quota.usage('p')).inUse).toEqual({ instances: 0, cores: 0, ramMb: 0 });
        expect(await s.claims.list()).toEqual([]);
        expect((await s.stores.actions.list(vm!.id)).map((a) => `${a.action}:${a.result}`)).toEqual([
          'create:success',
          'reboot_hard:success',
          'delete:success',
        ]);
        await s.events.flush();
        const events = await s.events.list(vm!.id);
        expect(events.length).toBeGreaterThan(8);
        expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
        expect(events.at(-1)!.event.type).toBe('instance.deleted');
        rec.unsubscribe();
        await compute.close();
      } finally {
        await s.close();
      }
    });

    it('updates instances with compare-and-set: a lost update is a typed conflict', async () => {
      const s = await freshStores(dialect);
      try {
        const i = buildTestInstance();
        await s.stores.instances.insert(i);
        const a = await s.stores.instances.update(i.id, 0, { taskState: 'rebooting' }, 1);
        expect(a.revision).toBe(1);
        const err = await s.stores.instances.update(i.id, 0, { taskState: 'pausing' }, 2).catch((e) => e);
        expect(err).toBeInstanceOf(RevisionConflictError);
        expect(err.details).toMatchObject({ expected: 0, actual: 1 });
        expect((await s.stores.instances.list({ withTask: true })).map((x) => x.id)).toEqual([i.id]);
      } finally {
        await s.close();
      }
    });

    it('guards claims with host capacity and a generation: a claim that no longer fits is a conflict', async () => {
      const s = await freshStores(dialect);
      try {
        await s.stores.hosts.upsert(host('h', 3));
        const claim = (n: number) => ({
          id: `c${n}`,
          instanceId: buildTestInstance().id,
          hostId: 'h',
          resources: { VCPU: 1, MEMORY_MB: 100 },
          createdAt: 0,
        });
        const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => s.claims.add(claim(n))));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
        const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
        for (const r of rejected) expect(r.reason).toBeInstanceOf(ClaimConflictError);
        expect(await s.claims.usage('h')).toEqual({ VCPU: 3, MEMORY_MB: 300 });
        const held = await s.claims.list({ hostId: 'h' });
        await s.claims.remove(held[0]!.id);
        await s.claims.remove(held[0]!.id);
        expect(await s.claims.usage('h')).toEqual({ VCPU: 2, MEMORY_MB: 200 });
      } finally {
        await s.close();
      }
    });

    it('checks claims against inventory net of reserved, times the allocation ratio, per resource class', async () => {
      const s = await freshStores(dialect);
      try {
        // VCPU: floor((4 - 1) * 1.5) = 4; MEMORY_MB: floor((1000 - 100) * 1.0) = 900; no DISK_GB
        await s.stores.hosts.upsert(
          hostSchema.parse({
            id: 'r',
            name: 'r',
            hypervisorType: 'fake',
            inventory: {
              VCPU: { total: 4, reserved: 1, allocationRatio: 1.5 },
              MEMORY_MB: { total: 1000, reserved: 100 },
            },
          }),
        );
        const claim = (n: number, resources: Record<string, number>) => ({
          id: `r${n}`,
          instanceId: buildTestInstance().id,
          hostId: 'r',
          resources,
          createdAt: 0,
        });
        const vcpu = await Promise.allSettled(
          [1, 2, 3, 4, 5].map((n) => s.claims.add(claim(n, { VCPU: 1 }))),
        );
        expect(vcpu.map((r) => r.status).filter((x) => x === 'fulfilled')).toHaveLength(4);
        await expect(s.claims.add(claim(6, { MEMORY_MB: 901 }))).rejects.toThrow(/insufficient MEMORY_MB/);
        await s.claims.add(claim(7, { MEMORY_MB: 900 }));
        await expect(s.claims.add(claim(8, { DISK_GB: 1 }))).rejects.toThrow(/insufficient DISK_GB/);
        // a claim that fails leaves nothing behind
        expect(await s.claims.usage('r')).toEqual({ VCPU: 4, MEMORY_MB: 900 });
        expect((await s.claims.list({ hostId: 'r' })).map((c) => c.id).sort()).toHaveLength(5);
      } finally {
        await s.close();
      }
    });

    it('adds server group members without losing concurrent updates', async () => {
      const s = await freshStores(dialect);
      try {
        await s.stores.groups.add({
          id: 'g',
          name: 'g',
          projectId: 'p',
          policy: 'anti-affinity',
          members: [],
        });
        const ids = Array.from({ length: 12 }, () => buildTestInstance().id);
        await Promise.all(ids.map((id) => s.stores.groups.addMembers('g', [id])));
        expect((await s.stores.groups.get('g'))!.members.sort()).toEqual([...ids].sort());
        await Promise.all(ids.slice(0, 6).map((id) => s.stores.groups.removeMember('g', id)));
        expect((await s.stores.groups.get('g'))!.members.sort()).toEqual(ids.slice(6).sort());
      } finally {
        await s.close();
      }
    });

    it('holds quota reservations in the database and never over-admits concurrent requests', async () => {
      const s = await freshStores(dialect);
      try {
        await s.quota.setLimits('p', { instances: 4 });
        const results = await Promise.allSettled(
          Array.from({ length: 12 }, () => s.quota.reserve('p', { instances: 1, cores: 1, ramMb: 1 })),
        );
        const ok = results.filter((r) => r.status === 'fulfilled');
        expect(ok).toHaveLength(4);
        expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(
          QuotaExceededError,
        );
        const usage = await s.quota.usage('p');
        expect(usage.reserved.instances).toBe(4);
        for (const r of ok) await s.quota.commit((r as PromiseFulfilledResult<never>).value);
        expect((await s.quota.usage('p')).inUse.instances).toBe(4);
      } finally {
        await s.close();
      }
    });
  });
}

describe('SQL stores shared by two engines (one SQLite file)', () => {
  it('a store never writes over an update another store made: its remembered record is only a shortcut', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-shared-')), 'db.sqlite');
    const a = await openSqliteStores({ path, shared: true });
    const b = await openSqliteStores({ path, shared: true });
    try {
      const i = buildTestInstance();
      await a.stores.instances.insert(i);
      const byB = await b.stores.instances.update(i.id, 0, { taskState: 'rebooting' }, 1);
      expect(byB.revision).toBe(1);
      const err = await a.stores.instances.update(i.id, 0, { taskState: 'pausing' }, 2).catch((e) => e);
      expect(err).toBeInstanceOf(RevisionConflictError);
      expect(err.details).toMatchObject({ expected: 0, actual: 1 });
      const fresh = await a.stores.instances.get(i.id);
      expect(fresh).toMatchObject({ revision: 1, taskState: 'rebooting' });
      const byA = await a.stores.instances.update(i.id, 1, { taskState: null }, 3);
      expect(await b.stores.instances.get(i.id)).toEqual(byA);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('refuses a second owner of a file opened exclusively (the default), naming the file', async () => {
    const s = await freshStores('sqlite');
    try {
      const err = await openSqliteStores({ path: s.path! }).catch((e) => e);
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect(err.details.database).toBe(s.path);
      expect(err.message).toMatch(/locked.*shared: true/);
      const shared = await openSqliteStores({ path: s.path!, shared: true }).catch((e) => e);
      expect(shared).toBeInstanceOf(DatabaseUnavailableError);
    } finally {
      await s.close();
    }
    const next = await openSqliteStores({ path: s.path! });
    await next.close();
  });

  it('keeps reservation rows when the engine is not the sole owner, and resync drops only stale ones', async () => {
    const s = await freshStores('sqlite', { staleReservationMs: 60_000 });
    try {
      await s.quota.setLimits('p', { instances: 3 });
      const r1 = await s.quota.reserve('p', { instances: 1, cores: 1, ramMb: 10 });
      const r2 = await s.quota.reserve('p', { instances: 2, cores: 2, ramMb: 20 });
      const over = await s.quota.reserve('p', { instances: 1, cores: 1, ramMb: 1 }).catch((e) => e);
      expect(over).toBeInstanceOf(QuotaExceededError);
      expect(over.details).toMatchObject({
        resource: 'instances',
        limit: 3,
        inUse: 0,
        reserved: 3,
        requested: 1,
      });
      await s.quota.commit(r1);
      await s.quota.commit(r1); // idempotent
      await s.quota.rollback(r2);
      expect(await s.quota.usage('p')).toMatchObject({
        inUse: { instances: 1, cores: 1, ramMb: 10 },
        reserved: { instances: 0, cores: 0, ramMb: 0 },
      });
      await s.quota.reserve('p', { instances: 1, cores: 1, ramMb: 1 });
      await s.quota.resync(); // recount from instances (none); the fresh reservation stays
      expect(await s.quota.usage('p')).toMatchObject({
        inUse: { instances: 0, cores: 0, ramMb: 0 },
        reserved: { instances: 1, cores: 1, ramMb: 1 },
      });
    } finally {
      await s.close();
    }
  });
});

describe('schema upgrades', () => {
  it('upgrades a 0001 database in place: pending and finished actions, reservations and usage survive', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-upgrade-')), 'db.sqlite');
    const handle = new BetterSqlite3(path);
    const old = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
    const migrator = new Migrator({
      db: old,
      provider: { getMigrations: async () => ({ '0001_initial': migrationsFor('sqlite')['0001_initial']! }) },
      migrationTableName: 'nlfs_migration',
      migrationLockTableName: 'nlfs_migration_lock',
    });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const action = (id: string, result: 'pending' | 'success') => ({
      id,
      instanceId: 'i1',
      action: 'create' as const,
      requestId: 'r',
      userId: null,
      projectId: 'p',
      startedAt: 1,
      finishedAt: result === 'pending' ? null : 2,
      result,
      fault: null,
    });
    for (const a of [action('a1', 'success'), action('a2', 'pending')]) {
      await old
        .insertInto('instance_actions')
        .values({ id: a.id, instance_id: a.instanceId, result: a.result, data: JSON.stringify(a) } as never)
        .execute();
    }
    await old
      .insertInto('quota_usage')
      .values({ project_id: 'p', instances: 2, cores: 4, ram_mb: 1024 } as never)
      .execute();
    await old
      .insertInto('quota_reservations')
      .values({ id: 'r1', project_id: 'p', instances: 1, cores: 2, ram_mb: 512, created_at: Date.now() })
      .execute();
    await old.destroy();

    const s = await openSqliteStores({ path, staleReservationMs: 60_000 });
    try {
      expect(s.database.schemaVersion).toBe(Object.keys(migrationsFor('sqlite')).at(-1));
      expect((await s.stores.actions.list('i1')).map((a) => a.result)).toEqual(['success', 'pending']);
      expect((await s.stores.actions.listPending()).map((a) => a.id)).toEqual(['a2']);
      await s.stores.actions.finish('a2', { result: 'success', finishedAt: 3, fault: null });
      expect(await s.stores.actions.list('i1')).toEqual([
        action('a1', 'success'),
        { ...action('a2', 'success'), finishedAt: 3 },
      ]);
      expect(await s.quota.usage('p')).toMatchObject({
        inUse: { instances: 2, cores: 4, ramMb: 1024 },
        reserved: { instances: 1, cores: 2, ramMb: 512 },
      });
    } finally {
      await s.close();
    }
  });
});

describe('opening databases', () => {
  it('names a SQLite file that cannot be opened', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nlfs-bad-')), 'a-file');
    writeFileSync(file, 'not a directory');
    const err = await openSqlite(join(file, 'db.sqlite')).catch((e) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err.details.database).toBe(join(file, 'db.sqlite'));
  });

  it('keeps units’ savepoint journals in memory, checkpoints every 10,000 WAL pages, and a large failed unit still undoes only itself', async () => {
    const s = await freshStores('sqlite');
    try {
      const { exec } = s.database;
      expect(
        (await exec.run<{ temp_store: number }>({ sql: 'pragma temp_store', parameters: [] })).rows,
      ).toEqual([{ temp_store: 2 }]);
      expect(
        (await exec.run<{ wal_autocheckpoint: number }>({ sql: 'pragma wal_autocheckpoint', parameters: [] }))
          .rows,
      ).toEqual([{ wal_autocheckpoint: 10_000 }]);
      await exec.run({ sql: 'create table big (id integer primary key, v text not null)', parameters: [] });
      const filler = 'x'.repeat(3000);
      const rows = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({
          sql: 'insert into big (id, v) values (?, ?)',
          parameters: [from + i, filler],
        }));
      // ~1 MiB of pages per unit: far past the 64 KiB at which a journal on file would spill
      const results = await Promise.allSettled([
        exec.unit(async (tx) => {
          for (const r of rows(0, 300)) await tx.run(r);
        }),
        exec.unit(async (tx) => {
          for (const r of rows(1000, 300)) await tx.run(r);
          await tx.run({ sql: 'update big set v = ? where id < 300', parameters: ['changed'] });
          await tx.run(rows(0, 1)[0]!); // duplicate id: this unit and its update are undone
        }),
        exec.unit(async (tx) => {
          for (const r of rows(2000, 300)) await tx.run(r);
        }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const { rows: left } = await exec.run<{ n: number; lo: number; hi: number; changed: number }>({
        sql: "select count(*) as n, min(id) as lo, max(id) as hi, sum(v = 'changed') as changed from big",
        parameters: [],
      });
      expect(left).toEqual([{ n: 600, lo: 0, hi: 2299, changed: 0 }]);
    } finally {
      await s.close();
    }
  });

  it('names (with the password redacted) a PostgreSQL server that cannot be reached', async () => {
    const err = await openPostgres('postgres://nova:secret@127.0.0.1:1/nowhere').catch((e) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err.details.database).toBe('postgres://nova:***@127.0.0.1:1/nowhere');
    expect(err.message).not.toContain('secret');
  });

  it('refuses a database written by a newer version instead of touching it', async () => {
    const s = await freshStores('sqlite');
    await s.database.db
      .insertInto('nlfs_migration' as never)
      .values({ name: '0099_future', timestamp: new Date().toISOString() } as never)
      .execute();
    await s.close();
    const err = await openSqlite(s.path!).catch((e) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect(err.details.unknownMigrations).toEqual(['0099_future']);
  });
});
