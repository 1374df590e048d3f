import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ComputeEngine,
  createCompute,
  type Image,
  LocalImageService,
  NotFoundError,
  type StorageOption,
} from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openPostgresStores, openSqliteStores } from './open-stores.js';
import { dropSchema, freshSchema, freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';
import { imageCacheDirOf, SqlImageStore } from './sql-image-store.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const image = (id: string, sha256: string, extra: Partial<Image> = {}): Image => ({
  id,
  name: `${id} <&> '"`,
  diskFormat: 'raw',
  containerFormat: 'bare',
  sha256,
  sizeBytes: 3,
  properties: { kernelCmdline: 'console=ttyS0 init=\'/bin/sh -c "x"\'' },
  createdAt: 1,
  ...extra,
});

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SqlImageStore on ${dialect}`, () => {
    it('puts, replaces, lists by id, removes (idempotently) and finds records by sha256', async () => {
      const s = await freshStores(dialect);
      try {
        const store = s.stores.images;
        const a = image('b-img', 'a'.repeat(64));
        await store.put({ image: a });
        await store.put({
          image: image('a-img', 'b'.repeat(64)),
          location: { kind: 'file', path: "/srv/images/it's here.qcow2" },
        });
        expect(await store.get('b-img')).toEqual({ image: a });
        expect((await store.list()).map((r) => r.image.id)).toEqual(['a-img', 'b-img']);
        expect((await store.get('a-img'))?.location).toEqual({
          kind: 'file',
          path: "/srv/images/it's here.qcow2",
        });
        expect(await store.hasSha256('a'.repeat(64))).toBe(true);

        const replaced = image('b-img', 'c'.repeat(64), { name: 'v2' });
        await store.put({ image: replaced });
        expect(await store.get('b-img')).toEqual({ image: replaced });
        expect(await store.hasSha256('a'.repeat(64))).toBe(false);
        expect(await store.hasSha256('c'.repeat(64))).toBe(true);

        await store.remove('b-img');
        await store.remove('b-img');
        expect(await store.get('b-img')).toBeUndefined();
        expect(await store.hasSha256('c'.repeat(64))).toBe(false);
        expect(await store.get('unknown')).toBeUndefined();
      } finally {
        await s.close();
      }
    });

    it('keeps names, properties and file locations with SQL, JSON, XML and shell metacharacters exactly', async () => {
      const s = await freshStores(dialect);
      const text = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc
          .array(
            fc.constantFrom("'", '"', '\\', ';', '--', '$(', '`', '<', '&', ']]>', '%', '_', 'é', '💥', '{}'),
            {
              maxLength: 10,
            },
          )
          .map((p) => p.join('')),
      );
      try {
        await fc.assert(
          fc.asyncProperty(text, text, text, async (name, value, path) => {
            const record = {
              image: image('meta', 'd'.repeat(64), { name, properties: { note: value } }),
              location: { kind: 'file' as const, path: `/srv/${path}` },
            };
            await s.stores.images.put(record);
            expect(await s.stores.images.get('meta')).toEqual(record);
            expect(await s.stores.images.list()).toEqual([record]);
          }),
          { numRuns: 25 },
        );
      } finally {
        await s.close();
      }
    });

    it('keeps the catalog across a reopen: a new service on it serves imported bytes and fetches registered files', async () => {
      const s = await freshStores(dialect);
      const dir = mkdtempSync(join(tmpdir(), 'nlfs-sql-images-'));
      const bytes = Buffer.from('imported rootfs');
      const later = Buffer.from('registered, fetched after the restart');
      const laterPath = join(dir, 'later.img');
      writeFileSync(laterPath, later);
      try {
        const first = new LocalImageService(join(dir, 'cache'), { store: s.stores.images });
        await first.import({ id: 'i', name: 'i', diskFormat: 'tar' }, { kind: 'bytes', bytes });
        await first.register(
          { id: 'r', name: 'r', diskFormat: 'raw', sha256: sha(later) },
          { kind: 'file', path: laterPath },
        );
      } finally {
        if (dialect === 'sqlite') await s.close();
      }
      const reopened =
        dialect === 'sqlite'
          ? await openSqliteStores({ path: s.path! })
          : await openPostgresStores({ url: pgUrl, schema: s.schema! });
      try {
        const second = new LocalImageService(join(dir, 'cache'), { store: reopened.stores.images });
        expect((await second.list()).map((i) => [i.id, i.sha256])).toEqual([
          ['i', sha(bytes)],
          ['r', sha(later)],
        ]);
        expect(readFileSync((await second.acquire('i')).path).equals(bytes)).toBe(true);
        const fetched = await second.acquire('r');
        expect(readFileSync(fetched.path).equals(later)).toBe(true);
        expect((await reopened.stores.images.get('r'))?.image.sizeBytes).toBe(later.length);
      } finally {
        await reopened.close();
        if (dialect === 'postgres') await s.close();
      }
    });
  });
}

describe('image cache directories of SQL catalogs', () => {
  it('lies beside the SQLite file, one per database', () => {
    expect(imageCacheDirOf({ dialect: 'sqlite', name: '/data/nova-lfs.sqlite' })).toBe('/data/images');
    expect(imageCacheDirOf({ dialect: 'sqlite', name: '/data/other.db' })).toBe('/data/other.db.images');
    expect(imageCacheDirOf({ dialect: 'sqlite', name: ':memory:' })).toBeUndefined();
  });

  it('differs between PostgreSQL databases and schemas, under the data directory', () => {
    const saved = process.env.NOVA_LFS_DATA_DIR;
    process.env.NOVA_LFS_DATA_DIR = '/var/lib/nova';
    try {
      const a = imageCacheDirOf({ dialect: 'postgres', name: 'postgres://u@h/db (schema a)' });
      const b = imageCacheDirOf({ dialect: 'postgres', name: 'postgres://u@h/db (schema b)' });
      expect(a).toMatch(/^\/var\/lib\/nova\/images-pg-[0-9a-f]{16}$/);
      expect(a).not.toBe(b);
    } finally {
      if (saved === undefined) delete process.env.NOVA_LFS_DATA_DIR;
      else process.env.NOVA_LFS_DATA_DIR = saved;
    }
  });

  it('is what the SQL store announces, unless given one', async () => {
    const s = await freshStores('sqlite');
    try {
      expect(s.stores.images.cacheDir).toBe(`${s.path}.images`);
      expect(new SqlImageStore(s.database, { cacheDir: '/x' }).cacheDir).toBe('/x');
    } finally {
      await s.close();
    }
  });
});

describe('engines on durable storage', () => {
  const flavors = [{ id: 'm1', vcpus: 1, ramMb: 256 }];
  const engineOn = (storage: StorageOption) =>
    createCompute({ storage, flavors, hosts: [{ id: 'h', driver: new FakeDriver() }] });
  /** Boots one instance of `imageId` and expects it active. */
  const expectBoots = async (compute: ComputeEngine, imageId: string) => {
    const [vm] = await compute.create({ name: 'web', projectId: 'p', userId: 'u', flavorId: 'm1', imageId });
    expect(vm?.fault ?? null).toBeNull();
    expect(vm).toMatchObject({ vmState: 'active', imageId });
  };

  it('an engine on SQLite restarted sees its imported image, metadata and bytes, cached under <dataDir>/images', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nlfs-engine-images-'));
    const bytes = Buffer.from('busybox rootfs tarball bytes');
    const first = await engineOn({ kind: 'sqlite', dataDir });
    let imported: Image;
    try {
      imported = await first.images.import(
        {
          id: 'busybox',
          name: 'busybox',
          diskFormat: 'tar',
          properties: { os_distro: 'busybox', architecture: 'x86_64' },
        },
        { kind: 'bytes', bytes },
      );
      expect((await first.images.acquire('busybox')).path).toBe(join(dataDir, 'images', 'blobs', sha(bytes)));
    } finally {
      await first.close();
    }

    const second = await engineOn({ kind: 'sqlite', dataDir });
    try {
      expect(await second.images.get('busybox')).toEqual(imported);
      const local = await second.images.acquire('busybox');
      expect(readFileSync(local.path).equals(bytes)).toBe(true);
      await expectBoots(second, 'busybox');
    } finally {
      await second.close();
    }
  });

  it('two engines on memory storage have their own caches: B removing its image leaves A working', async () => {
    const bytes = Buffer.from('the same image in two engines');
    const a = await engineOn('memory');
    const b = await engineOn('memory');
    const engines = [a, b];
    try {
      for (const e of engines) {
        await e.images.import(
          { id: 'busybox', name: 'busybox', diskFormat: 'tar' },
          { kind: 'bytes', bytes },
        );
      }
      await b.images.remove('busybox');
      await expect(b.images.acquire('busybox')).rejects.toBeInstanceOf(NotFoundError);
      const local = await a.images.acquire('busybox');
      expect(readFileSync(local.path).equals(bytes)).toBe(true);
      expect(existsSync(local.path)).toBe(true);
      await expectBoots(a, 'busybox');
    } finally {
      for (const e of engines) await e.close();
    }
  });

  it.skipIf(!postgresAvailable)('two engines on one PostgreSQL schema share one catalog', async () => {
    const schema = freshSchema();
    const open = () =>
      createCompute({
        storage: { kind: 'postgres', url: pgUrl, schema },
        flavors,
        hosts: [{ id: `h-${Math.random()}`, driver: new FakeDriver() }],
      });
    const a = await open();
    try {
      await a.images.register(
        { id: 'shared', name: 'shared', diskFormat: 'raw', sha256: '5'.repeat(64) },
        { kind: 'bytes', bytes: new Uint8Array() },
      );
      const b = await open();
      try {
        expect(await b.images.get('shared')).toEqual(await a.images.get('shared'));
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
      await dropSchema(schema);
    }
  });
});
