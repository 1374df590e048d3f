import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigurationError,
  createCompute,
  ErrorCode,
  type Instance,
  type StorageOption,
} from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from './errors.js';
import { openPostgresStores, openSqliteStores, openStorage } from './open-stores.js';
import { dropSchema, freshSchema, freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const flavors = [{ id: 'm1', vcpus: 1, ramMb: 256 }];
const image = { id: 'img', name: 'img', diskFormat: 'raw' as const, sha256: '4'.repeat(64) };
const savedDataDir = process.env.NOVA_LFS_DATA_DIR;

afterEach(() => {
  if (savedDataDir === undefined) delete process.env.NOVA_LFS_DATA_DIR;
  else process.env.NOVA_LFS_DATA_DIR = savedDataDir;
});

/** An engine on `storage` (default when omitted) that booted one instance and closed. */
async function bootOneAndClose(storage?: StorageOption): Promise<Instance> {
  const compute = await createCompute({
    ...(storage ? { storage } : {}),
    flavors,
    hosts: [{ id: 'h', driver: new FakeDriver() }],
  });
  await compute.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
  const [vm] = await compute.create({
    name: 'a',
    projectId: 'p',
    userId: 'u',
    flavorId: 'm1',
    imageId: 'img',
  });
  await compute.close();
  return vm!;
}

describe('createCompute storage', () => {
  it('keeps state in SQLite by default ($NOVA_LFS_DATA_DIR), records events, and closes the database with the engine', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-default-'));
    process.env.NOVA_LFS_DATA_DIR = dataDir;
    const vm = await bootOneAndClose();
    expect(vm.vmState).toBe('active');
    expect(existsSync(join(dataDir, 'nova-lfs.sqlite'))).toBe(true);

    const stored = await openSqliteStores({ dataDir });
    try {
      expect(await stored.stores.instances.get(vm.id)).toEqual(vm);
      expect((await stored.quota.usage('p')).inUse.instances).toBe(1);
      const events = await stored.events.list(vm.id);
      expect(events.map((e) => e.event.type)).toContain('instance.created');
      expect(events.at(-1)!.event).toMatchObject({ type: 'instance.action', action: { result: 'success' } });
    } finally {
      await stored.close();
    }
  });

  it('applies quota limits given as options to the durable quota', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-limits-'));
    const compute = await createCompute({
      storage: { kind: 'sqlite', dataDir },
      flavors,
      quota: { defaults: { instances: 1, cores: 10, ramMb: 10_000 }, projects: { big: { instances: 5 } } },
      hosts: [{ id: 'h', driver: new FakeDriver() }],
    });
    try {
      expect((await compute.quotas.get('p')).limits.instances).toBe(1);
      expect((await compute.quotas.get('big')).limits.instances).toBe(5);
    } finally {
      await compute.close();
    }
  });

  it('tells where its SQLite storage keeps the state, or nothing when in memory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-where-'));
    const onSqlite = await createCompute({ storage: { kind: 'sqlite', dataDir }, flavors });
    expect(onSqlite.storageLocation).toBe(`SQLite ${join(dataDir, 'nova-lfs.sqlite')}`);
    await onSqlite.close();
    const inMemory = await createCompute({ storage: 'memory', flavors });
    expect(inMemory.storageLocation).toBeUndefined();
    await inMemory.close();
  });

  it.skipIf(!postgresAvailable)(
    'tells where its PostgreSQL storage keeps the state, password redacted',
    async () => {
      const schema = freshSchema();
      try {
        const onPostgres = await createCompute({
          storage: { kind: 'postgres', url: pgUrl, schema },
          flavors,
        });
        expect(onPostgres.storageLocation).toBe(
          `PostgreSQL ${pgUrl.replace(/:[^:@/]*@/, ':***@')} (schema ${schema})`,
        );
        await onPostgres.close();
      } finally {
        await dropSchema(schema);
      }
    },
  );

  it('names a data directory it cannot use', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nlfs-bad-')), 'a-file');
    writeFileSync(file, 'not a directory');
    const err = await createCompute({ storage: { kind: 'sqlite', dataDir: file }, flavors }).catch((e) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err.details.database).toBe(join(file, 'nova-lfs.sqlite'));
  });

  it.skipIf(!postgresAvailable)('keeps state in PostgreSQL when asked', async () => {
    const schema = freshSchema();
    try {
      const vm = await bootOneAndClose({ kind: 'postgres', url: pgUrl, schema });
      const stored = await openPostgresStores({ url: pgUrl, schema });
      try {
        expect(await stored.stores.instances.get(vm.id)).toEqual(vm);
      } finally {
        await stored.close();
      }
    } finally {
      await dropSchema(schema);
    }
  });
});

describe('storage option checks', () => {
  it('refuses a mistyped storage with a ConfigurationError naming it, and opens nothing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-typo-'));
    process.env.NOVA_LFS_DATA_DIR = dataDir;
    const typos: unknown[] = [
      'bogus',
      'postgresql',
      { kind: 'sqllite' },
      { kind: 'sqlite', datadir: dataDir },
    ];
    for (const storage of typos) {
      for (const attempt of [
        () => createCompute({ storage: storage as StorageOption, flavors }),
        () => openStorage(storage as never),
      ]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConfigurationError);
        expect(err).toMatchObject({ code: ErrorCode.Configuration, details: { setting: 'storage' } });
        expect((err as Error).message).toContain(JSON.stringify(storage));
        expect((err as Error).message).toContain("accepted: 'memory', 'sqlite'");
      }
    }
    // nothing was created where the default SQLite storage would live
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it.skipIf(!postgresAvailable)(
    'opens PostgreSQL only at a URL given or in $NOVA_LFS_PG_URL, never at a built-in default',
    async () => {
      const saved = process.env.NOVA_LFS_PG_URL;
      const schema = freshSchema();
      const schemaExists = async () => {
        const c = new pg.Client({ connectionString: pgUrl });
        await c.connect();
        try {
          const r = await c.query('select 1 from information_schema.schemata where schema_name = $1', [
            schema,
          ]);
          return r.rowCount === 1;
        } finally {
          await c.end();
        }
      };
      try {
        delete process.env.NOVA_LFS_PG_URL;
        for (const attempt of [
          () => createCompute({ storage: { kind: 'postgres', schema }, flavors }),
          () => openStorage({ kind: 'postgres', schema }),
          () => openPostgresStores({ schema }),
        ]) {
          const err = await attempt().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ConfigurationError);
          expect(err).toMatchObject({ code: ErrorCode.Configuration, details: { setting: 'storage.url' } });
          expect((err as Error).message).toContain('NOVA_LFS_PG_URL');
        }
        expect(await schemaExists()).toBe(false);
        // with the variable set, the same option opens that server
        process.env.NOVA_LFS_PG_URL = pgUrl;
        const compute = await createCompute({ storage: { kind: 'postgres', schema }, flavors });
        expect(compute.storageLocation).toContain(`(schema ${schema})`);
        await compute.close();
        expect(await schemaExists()).toBe(true);
      } finally {
        if (saved === undefined) delete process.env.NOVA_LFS_PG_URL;
        else process.env.NOVA_LFS_PG_URL = saved;
        await dropSchema(schema);
      }
    },
  );
});

describe.each(['sqlite', 'postgres'] as const)('admission on %s', (dialect) => {
  it('writes nothing of an admission whose unit fails (its server group vanished), holding no quota', async () => {
    const s = await freshStores(dialect);
    const compute = await createCompute({
      stores: s.stores,
      quota: s.quota,
      flavors,
      hosts: [{ id: 'h', driver: new FakeDriver() }],
    });
    try {
      await compute.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
      await compute.serverGroups.create({ id: 'g', name: 'g', projectId: 'p', policy: 'soft-affinity' });
      // the group goes between the admission's lookup and its unit of work
      const get = s.stores.groups.get.bind(s.stores.groups);
      s.stores.groups.get = async (id: string) => {
        const g = await get(id);
        await s.stores.groups.remove(id);
        return g;
      };
      const req = { name: 'a', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img', count: 2 };
      await expect(compute.create({ ...req, hints: { group: 'g' } })).rejects.toMatchObject({
        code: 'NLFS_NOT_FOUND',
      });
      const usage = await s.quota.usage('p');
      expect(usage.inUse).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
      expect(usage.reserved).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
      expect(await s.stores.instances.list()).toEqual([]);
      expect(await s.stores.actions.listPending()).toEqual([]);
      const vms = await compute.create(req);
      expect(vms.map((v) => v.vmState)).toEqual(['active', 'active']);
      expect((await s.quota.usage('p')).inUse.instances).toBe(2);
    } finally {
      await compute.close();
      await s.close();
    }
  });

  it('consumes quota in the admission unit (exactly what fits under concurrency) and releases it in the removal unit', async () => {
    const s = await freshStores(dialect);
    const compute = await createCompute({
      stores: s.stores,
      quota: s.quota,
      flavors,
      hosts: [{ id: 'h', driver: new FakeDriver() }],
    });
    try {
      expect(s.stores.unit.quota).toBe(s.quota);
      await compute.images.register(image, { kind: 'bytes', bytes: new Uint8Array() });
      // the project's own limit (read inside the statement on PostgreSQL), and its first use (no row yet)
      await s.quota.setLimits('p', { instances: 3 });
      const req = { name: 'a', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => compute.create(req)));
      const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      expect(admitted).toHaveLength(3);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toMatchObject({
            code: 'NLFS_QUOTA_EXCEEDED',
            details: { projectId: 'p', resource: 'instances', limit: 3, inUse: 3, requested: 1 },
          });
        }
      }
      const usage = await s.quota.usage('p');
      expect(usage.inUse).toMatchObject({ instances: 3, cores: 3, ramMb: 768 });
      expect(usage.reserved).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
      await Promise.all(admitted.map((vm) => compute.delete(vm.id)));
      expect((await s.quota.usage('p')).inUse).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
      expect(await s.stores.instances.list()).toEqual([]);
    } finally {
      await compute.close();
      await s.close();
    }
  });
});
