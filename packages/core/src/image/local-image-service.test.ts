import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ImageChecksumError, NotFoundError } from '../errors.js';
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
