import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ImageChecksumError, NotFoundError, ValidationError } from '../errors.js';
import { MemoryImageStore } from '../store/memory-image-store.js';
import { defaultImageService } from './default-image-service.js';
import { LocalImageService } from './local-image-service.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('LocalImageService', () => {
  const fresh = () => new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-images-')));

  it('imports a file, hashing it, and serves it from the content-addressed store', async () => {
    const images = fresh();
    const src = join(images.dir, '..', `src-${Date.now()}`);
    const bytes = Buffer.from('kernel bytes '.repeat(1000));
    writeFileSync(src, bytes);
    const image = await images.import(
      { id: 'k1', name: 'kernel', diskFormat: 'raw' },
      { kind: 'file', path: src },
    );
    expect(image).toMatchObject({ id: 'k1', sha256: sha(bytes), sizeBytes: bytes.length });
    const local = await images.acquire('k1');
    expect(local.path).toBe(images.blobPath(sha(bytes)));
    expect(readFileSync(local.path).equals(bytes)).toBe(true);
  });

  it('rejects an import whose bytes do not match the declared sha256 and keeps nothing', async () => {
    const images = fresh();
    const err = await images
      .import(
        { id: 'bad', name: 'bad', diskFormat: 'raw', sha256: 'f'.repeat(64) },
        { kind: 'bytes', bytes: Buffer.from('tampered') },
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(ImageChecksumError);
    expect(err.details).toMatchObject({
      imageId: 'bad',
      expected: 'f'.repeat(64),
      actual: sha(Buffer.from('tampered')),
    });
    expect(await images.get('bad')).toBeUndefined();
    expect(readdirSync(join(images.dir, 'blobs'))).toEqual([]);
    expect(readdirSync(join(images.dir, 'tmp'))).toEqual([]);
  });

  it('fetches a registered image once however many drivers ask at the same time', async () => {
    const images = fresh();
    const bytes = Buffer.alloc(256 * 1024, 7);
    let opens = 0;
    await images.register(
      { id: 'cirros', name: 'cirros', diskFormat: 'qcow2', sha256: sha(bytes) },
      {
        kind: 'stream',
        open: () => {
          opens++;
          return Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]);
        },
      },
    );
    const results = await Promise.all(Array.from({ length: 20 }, () => images.acquire('cirros')));
    expect(opens).toBe(1);
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    expect(results[0]!.image.sizeBytes).toBe(bytes.length);
    await images.acquire('cirros');
    expect(opens).toBe(1);
  });

  it('verifies registered bytes at fetch time and retries after a failed fetch', async () => {
    const images = fresh();
    const good = Buffer.from('good');
    let payload = Buffer.from('evil');
    await images.register(
      { id: 'img', name: 'img', diskFormat: 'raw', sha256: sha(good) },
      { kind: 'stream', open: () => Readable.from([payload]) },
    );
    await expect(images.acquire('img')).rejects.toBeInstanceOf(ImageChecksumError);
    payload = good;
    await expect(images.acquire('img')).resolves.toMatchObject({ image: { id: 'img' } });
  });

  it('shares blobs between images with equal bytes and removes them with the last one', async () => {
    const images = fresh();
    const bytes = Buffer.from('same');
    await images.import({ id: 'a', name: 'a', diskFormat: 'raw' }, { kind: 'bytes', bytes });
    await images.import({ id: 'b', name: 'b', diskFormat: 'raw' }, { kind: 'bytes', bytes });
    expect(readdirSync(join(images.dir, 'blobs'))).toEqual([sha(bytes)]);
    await images.remove('a');
    expect(readdirSync(join(images.dir, 'blobs'))).toEqual([sha(bytes)]);
    await images.remove('b');
    await images.remove('b');
    expect(readdirSync(join(images.dir, 'blobs'))).toEqual([]);
    await expect(images.acquire('b')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('LocalImageService input', () => {
  const fresh = () => new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-images-')));
  const errorOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  it.each([
    [{ id: 'bad id!', name: 'x', diskFormat: 'raw' }, ['id']],
    [{ name: '', diskFormat: 'raw' }, ['name']],
    [{ name: 'x\u0000y', diskFormat: 'raw' }, ['name']],
    [{ name: 'x', diskFormat: 'vmdk' }, ['diskFormat']],
    [{ name: 'x', diskFormat: 'raw', containerFormat: 'zip' }, ['containerFormat']],
    [{ name: 'x', diskFormat: 'raw', sha256: 'F'.repeat(64) }, ['sha256']],
    [
      { name: 'x', diskFormat: 'raw', properties: JSON.parse('{"__proto__": "x"}') },
      ['properties.__proto__'],
    ],
    [{ name: 'x', diskFormat: 'raw', properties: { k: 'a\nb' } }, ['properties.k']],
    [{}, ['name', 'diskFormat']],
  ])('import refuses %j with a ValidationError naming %j, storing nothing', async (meta, fields) => {
    const images = fresh();
    const err = await errorOf(images.import(meta as never, { kind: 'bytes', bytes: Buffer.from('b') }));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields).toEqual(fields);
    expect(await images.list()).toEqual([]);
  });

  it.each([
    [{ kind: 'file', path: '' }, 'source.path'],
    [{ kind: 'file', path: 'a\u0000b' }, 'source.path'],
    [{ kind: 'file' }, 'source.path'],
    [{ kind: 'url', url: 'http://x' }, 'source.kind'],
    [{ kind: 'bytes', bytes: 'not bytes' }, 'source.bytes'],
    [{ kind: 'stream', open: 'not a function' }, 'source.open'],
    [undefined, 'source'],
  ])('import and register refuse the source %j naming %s', async (source, field) => {
    const images = fresh();
    for (const call of [
      () => images.import({ name: 'x', diskFormat: 'raw' }, source as never),
      () => images.register({ name: 'x', diskFormat: 'raw', sha256: 'a'.repeat(64) }, source as never),
    ]) {
      const err = await errorOf(call());
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).fields).toEqual([field]);
    }
  });

  it('register requires a sha256 and a non-negative integer size, naming them', async () => {
    const images = fresh();
    const src = { kind: 'bytes', bytes: Buffer.from('b') } as const;
    const missing = await errorOf(images.register({ name: 'x', diskFormat: 'raw' } as never, src));
    expect((missing as ValidationError).fields).toEqual(['sha256']);
    const size = await errorOf(
      images.register({ name: 'x', diskFormat: 'raw', sha256: 'a'.repeat(64), sizeBytes: -1 }, src),
    );
    expect((size as ValidationError).fields).toEqual(['sizeBytes']);
  });

  it('a missing file is a NotFoundError naming source.path, at import and at registration', async () => {
    const images = fresh();
    const path = join(images.dir, 'no-such-file.img');
    for (const call of [
      () => images.import({ name: 'x', diskFormat: 'raw' }, { kind: 'file', path }),
      () => images.register({ name: 'x', diskFormat: 'raw', sha256: 'a'.repeat(64) }, { kind: 'file', path }),
      () =>
        images.import({ name: 'x', diskFormat: 'raw' }, { kind: 'file', path: join(path, 'below-a-file') }),
    ]) {
      const err = await errorOf(call());
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as NotFoundError).details).toMatchObject({ kind: 'image source', field: 'source.path' });
    }
    expect(await images.list()).toEqual([]);
  });

  it('a directory as a file source is a ValidationError naming source.path', async () => {
    const images = fresh();
    for (const call of [
      () => images.import({ name: 'x', diskFormat: 'raw' }, { kind: 'file', path: tmpdir() }),
      () =>
        images.register(
          { name: 'x', diskFormat: 'raw', sha256: 'a'.repeat(64) },
          { kind: 'file', path: tmpdir() },
        ),
    ]) {
      const err = await errorOf(call());
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).fields).toEqual(['source.path']);
    }
  });

  it('a registered file that disappears before the first fetch is a NotFoundError naming source.path', async () => {
    const images = fresh();
    const path = join(images.dir, '..', `vanishing-${Date.now()}`);
    const bytes = Buffer.from('soon gone');
    writeFileSync(path, bytes);
    await images.register(
      { id: 'v', name: 'v', diskFormat: 'raw', sha256: sha(bytes) },
      { kind: 'file', path },
    );
    rmSync(path);
    const err = await errorOf(images.acquire('v'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).details.field).toBe('source.path');
  });
});

describe('LocalImageService catalog', () => {
  it('keeps its catalog in the ImageStore: a new service on the same store and directory sees imported and registered images', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-images-'));
    const store = new MemoryImageStore();
    const first = new LocalImageService(dir, { store });
    const bytes = Buffer.from('rootfs');
    const later = Buffer.from('registered bytes');
    const laterPath = join(dir, '..', `registered-${Date.now()}`);
    writeFileSync(laterPath, later);
    await first.import({ id: 'a', name: 'a', diskFormat: 'tar' }, { kind: 'bytes', bytes });
    await first.register(
      { id: 'r', name: 'r', diskFormat: 'raw', sha256: sha(later) },
      { kind: 'file', path: laterPath },
    );
    expect((await store.get('r'))?.location).toEqual({ kind: 'file', path: laterPath });

    const second = new LocalImageService(dir, { store });
    expect((await second.list()).map((i) => i.id)).toEqual(['a', 'r']);
    expect(readFileSync((await second.acquire('a')).path).equals(bytes)).toBe(true);
    const fetched = await second.acquire('r');
    expect(readFileSync(fetched.path).equals(later)).toBe(true);
    expect(fetched.image.sizeBytes).toBe(later.length);
    expect((await store.get('r'))?.image.sizeBytes).toBe(later.length);
  });

  it('a stream source lasts for the process only: another service reports the bytes as not found', async () => {
    const store = new MemoryImageStore();
    const bytes = Buffer.from('streamed');
    const first = new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-images-')), { store });
    await first.register(
      { id: 's', name: 's', diskFormat: 'raw', sha256: sha(bytes) },
      { kind: 'stream', open: () => Readable.from([bytes]) },
    );
    expect((await store.get('s'))?.location).toBeUndefined();
    const second = new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-images-')), { store });
    const err = await second.acquire('s').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).details).toMatchObject({ kind: 'image bytes', id: sha(bytes) });
    await expect(first.acquire('s')).resolves.toMatchObject({ image: { id: 's' } });
  });

  it('re-importing an id replaces the image and drops bytes nothing else uses', async () => {
    const images = new LocalImageService(mkdtempSync(join(tmpdir(), 'nlfs-images-')));
    const v1 = Buffer.from('v1');
    const v2 = Buffer.from('v2');
    await images.import({ id: 'x', name: 'x', diskFormat: 'raw' }, { kind: 'bytes', bytes: v1 });
    await images.import({ id: 'x', name: 'x2', diskFormat: 'raw' }, { kind: 'bytes', bytes: v2 });
    expect(await images.get('x')).toMatchObject({ name: 'x2', sha256: sha(v2) });
    expect(readdirSync(join(images.dir, 'blobs'))).toEqual([sha(v2)]);
  });

  it('default services never share a cache: B removing its image leaves A with its own', async () => {
    const a = defaultImageService();
    const b = defaultImageService();
    expect(a.dir).not.toBe(b.dir);
    const bytes = Buffer.from('same image in two engines');
    for (const s of [a, b])
      await s.import({ id: 'busybox', name: 'busybox', diskFormat: 'tar' }, { kind: 'bytes', bytes });
    await b.remove('busybox');
    await expect(b.acquire('busybox')).rejects.toBeInstanceOf(NotFoundError);
    const local = await a.acquire('busybox');
    expect(readFileSync(local.path).equals(bytes)).toBe(true);
    await a.close();
    await b.close();
  });

  it('a temporary service removes its directory on close; one given a directory keeps it', async () => {
    const temp = LocalImageService.temporary();
    await temp.import({ id: 't', name: 't', diskFormat: 'raw' }, { kind: 'bytes', bytes: Buffer.from('t') });
    expect(existsSync(temp.blobPath(sha(Buffer.from('t'))))).toBe(true);
    await temp.close();
    expect(existsSync(temp.dir)).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-images-'));
    const kept = new LocalImageService(dir);
    await kept.import({ id: 'k', name: 'k', diskFormat: 'raw' }, { kind: 'bytes', bytes: Buffer.from('k') });
    await kept.close();
    expect(existsSync(kept.blobPath(sha(Buffer.from('k'))))).toBe(true);
  });

  it('the default service caches beside a durable catalog (its cacheDir) unless given a directory', () => {
    const store = Object.assign(new MemoryImageStore(), { cacheDir: '/var/lib/nova/images' });
    expect(defaultImageService({ store }).dir).toBe('/var/lib/nova/images');
    expect(defaultImageService({ store, dir: '/elsewhere' }).dir).toBe('/elsewhere');
  });
});
