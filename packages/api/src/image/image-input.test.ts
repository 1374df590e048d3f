import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../testing/api-harness.test-helper.js';
import { createImage, imageHarness, json, patch, upload } from './image.test-helper.js';

const limit = 1024 * 1024;
let h: ApiHarness;
let dir: string;
let uploads: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-input-test-'));
  uploads = join(dir, 'uploads');
  h = await imageHarness({ uploadDir: uploads, maxImageBytes: limit });
});
afterEach(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});

const show = async (id: unknown) =>
  json(await h.call('alice', { method: 'GET', url: `/image/v2/images/${id}` }));
const leftovers = () => readdir(uploads).catch(() => [] as string[]);

describe('upload limits and failures', () => {
  it('refuses a declared length over the limit with 413 and changes nothing', async () => {
    const img = await createImage(h, 'alice');
    const before = await show(img.id);
    const res = await upload(h, 'alice', img.id as string, randomBytes(limit + 1));
    expect(res.statusCode).toBe(413);
    expect(json(res)).toMatchObject({ code: 413, title: 'Request Entity Too Large' });
    expect(await show(img.id)).toEqual(before);
    expect(await h.services.engine.images.get(img.id as string)).toBeUndefined();
    expect(await leftovers()).toEqual([]);
  });

  it('counts streamed bytes without a length: 413, back to queued, no temp file, upload possible after', async () => {
    const img = await createImage(h, 'alice');
    const chunks = Array.from({ length: 20 }, () => randomBytes(64 * 1024));
    const res = await upload(h, 'alice', img.id as string, Readable.from(chunks));
    expect(res.statusCode).toBe(413);
    expect((await show(img.id)).status).toBe('queued');
    expect(await h.services.engine.images.get(img.id as string)).toBeUndefined();
    expect(await leftovers()).toEqual([]);
    const exact = randomBytes(limit);
    expect((await upload(h, 'alice', img.id as string, Readable.from([exact]))).statusCode).toBe(204);
    expect(await show(img.id)).toMatchObject({ status: 'active', size: limit });
  });

  it('puts an image back to queued when the upload stream fails', async () => {
    const img = await createImage(h, 'alice');
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1000));
        this.destroy(new Error('client went away'));
      },
    });
    // the injected request rejects with the stream's error; the handler then winds down on its own
    await expect(upload(h, 'alice', img.id as string, failing)).rejects.toThrow('client went away');
    await expect.poll(async () => (await show(img.id)).status).toBe('queued');
    expect(await leftovers()).toEqual([]);
    expect(await h.services.engine.images.get(img.id as string)).toBeUndefined();
  });

  it('over real HTTP, answers a chunked upload over the limit with 413 before reading it all', async () => {
    const img = await createImage(h, 'alice');
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = h.app.server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'PUT', path: `/image/v2/images/${img.id}/file` },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.setHeader('x-auth-token', 'alice');
      req.setHeader('content-type', 'application/octet-stream');
      req.on('error', reject);
      // keeps sending (chunked, no length) until the server answers
      const chunk = randomBytes(64 * 1024);
      const pump = () => {
        while (!req.destroyed && req.write(chunk)) {}
      };
      req.on('drain', pump);
      req.on('response', () => req.destroy());
      pump();
    });
    expect(status).toBe(413);
    expect((await show(img.id)).status).toBe('queued');
    expect(await leftovers()).toEqual([]);
  });

  it('lets one of two concurrent uploads win; the other gets 409', async () => {
    const img = await createImage(h, 'alice');
    const results = await Promise.all([
      upload(h, 'alice', img.id as string, randomBytes(200_000)),
      upload(h, 'alice', img.id as string, randomBytes(200_000)),
    ]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([204, 409]);
    expect(await show(img.id)).toMatchObject({ status: 'active', size: 200_000 });
    expect(await leftovers()).toEqual([]);
  });

  it('accepts an empty upload (size 0)', async () => {
    const img = await createImage(h, 'alice');
    expect((await upload(h, 'alice', img.id as string, Buffer.alloc(0))).statusCode).toBe(204);
    expect(await show(img.id)).toMatchObject({
      status: 'active',
      size: 0,
      checksum: 'd41d8cd98f00b204e9800998ecf8427e',
    });
  });
});

describe('input validation', () => {
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    h.call('alice', { method: 'POST', url: '/image/v2/images', payload: payload as string, headers });

  it('refuses hostile names and properties naming the field', async () => {
    const nul = await post({ name: 'a\u0000b' });
    expect(nul.statusCode).toBe(400);
    expect(json(nul).message).toContain('body.name');
    const ctl = await post({ os_distro: 'x\ny' });
    expect(ctl.statusCode).toBe(400);
    expect(json(ctl).message).toContain('body.os_distro');
    expect((await post({ os_distro: 5 })).statusCode).toBe(400);
    expect((await post('{"__proto__": "x"}', { 'content-type': 'application/json' })).statusCode).toBe(400);
    expect((await post({ 'bad key': 'x' })).statusCode).toBe(400);
    expect((await post({ name: 'x'.repeat(256) })).statusCode).toBe(400);
    expect((await post({ tags: ['ok', 'b\u0007d'] })).statusCode).toBe(400);
    expect((await post({ min_disk: -1 })).statusCode).toBe(400);
    expect((await post({ id: 'not-a-uuid' })).statusCode).toBe(400);
    expect((await post([1, 2])).statusCode).toBe(400);
    const badFormat = await post({ disk_format: 'vmdk' });
    expect(badFormat.statusCode).toBe(400);
    expect(json(badFormat).message).toContain('body.disk_format');
  });

  it('stores XML, SQL and shell metacharacters verbatim', async () => {
    const meta = `x'; DROP TABLE image_record;-- <b>&"$(rm -rf /)`;
    const img = await createImage(h, 'alice', { name: meta, note: meta });
    expect(await show(img.id)).toMatchObject({ name: meta, note: meta });
    const listed = json<{ images: { name: string }[] }>(
      await h.call('alice', { method: 'GET', url: `/image/v2/images?name=${encodeURIComponent(meta)}` }),
    );
    expect(listed.images.map((i) => i.name)).toEqual([meta]);
    const pnul = await patch(h, 'alice', img.id as string, [
      { op: 'replace', path: '/name', value: 'a\u0000' },
    ]);
    expect(pnul.statusCode).toBe(400);
    expect(json(pnul).message).toContain('body.0.value');
  });

  it('refuses read-only attributes with 403', async () => {
    for (const field of ['status', 'checksum', 'size', 'self', 'file', 'os_hash_value', 'created_at']) {
      expect((await post({ [field]: 'x' })).statusCode, field).toBe(403);
    }
    const id = (await createImage(h, 'alice')).id as string;
    expect(
      (await patch(h, 'alice', id, [{ op: 'replace', path: '/status', value: 'active' }])).statusCode,
    ).toBe(403);
    expect((await patch(h, 'alice', id, [{ op: 'replace', path: '/owner', value: 'p2' }])).statusCode).toBe(
      403,
    );
    expect((await patch(h, 'alice', id, [{ op: 'remove', path: '/name' }])).statusCode).toBe(403);
    expect((await patch(h, 'admin', id, [{ op: 'replace', path: '/owner', value: 'p2' }])).statusCode).toBe(
      200,
    );
  });

  it('needs the JSON-patch media type on PATCH (415) and a valid patch', async () => {
    const id = (await createImage(h, 'alice', { tags: ['a'] })).id as string;
    const plain = await h.call('alice', {
      method: 'PATCH',
      url: `/image/v2/images/${id}`,
      payload: [{ op: 'replace', path: '/name', value: 'x' }],
    });
    expect(plain.statusCode).toBe(415);
    expect((await patch(h, 'alice', id, [{ op: 'move', path: '/name' }])).statusCode).toBe(400);
    expect((await patch(h, 'alice', id, { op: 'add' })).statusCode).toBe(400);
    expect((await patch(h, 'alice', id, [{ op: 'replace', path: 'name', value: 'x' }])).statusCode).toBe(400);
    expect((await patch(h, 'alice', id, [{ op: 'replace', path: '/nope', value: 'x' }])).statusCode).toBe(
      409,
    );
    expect((await patch(h, 'alice', id, [{ op: 'replace', path: '/tags/5', value: 'x' }])).statusCode).toBe(
      400,
    );
    expect((await patch(h, 'alice', id, [{ op: 'replace', path: '/min_disk', value: '1' }])).statusCode).toBe(
      400,
    );
    const ok = await patch(h, 'alice', id, [
      { op: 'add', path: '/tags/0', value: 'z' },
      { op: 'replace', path: '/tags/1', value: 'b' },
      { op: 'replace', path: '/disk_format', value: 'qcow2' },
    ]);
    expect(ok.statusCode).toBe(200);
    expect(json(ok)).toMatchObject({ tags: ['z', 'b'], disk_format: 'qcow2' });
    // a failed patch changes nothing, even when earlier operations were valid
    const partial = await patch(h, 'alice', id, [
      { op: 'replace', path: '/name', value: 'changed' },
      { op: 'replace', path: '/status', value: 'active' },
    ]);
    expect(partial.statusCode).toBe(403);
    expect((await show(id)).name).toBe('img');
  });
});

describe('tags', () => {
  it('adds and removes tags one at a time', async () => {
    const img = await createImage(h, 'alice', { tags: ['a'] });
    const url = `/image/v2/images/${img.id}`;
    expect((await h.call('alice', { method: 'PUT', url: `${url}/tags/b` })).statusCode).toBe(204);
    expect((await h.call('alice', { method: 'PUT', url: `${url}/tags/b` })).statusCode).toBe(204);
    expect((await show(img.id)).tags).toEqual(['a', 'b']);
    expect((await h.call('alice', { method: 'DELETE', url: `${url}/tags/a` })).statusCode).toBe(204);
    expect((await h.call('alice', { method: 'DELETE', url: `${url}/tags/a` })).statusCode).toBe(404);
    expect((await show(img.id)).tags).toEqual(['b']);
    expect((await h.call('bob', { method: 'PUT', url: `${url}/tags/c` })).statusCode).toBe(404);
    expect((await h.call('rita', { method: 'PUT', url: `${url}/tags/c` })).statusCode).toBe(403);
    expect((await h.call('alice', { method: 'PUT', url: `${url}/tags/%01` })).statusCode).toBe(400);
  });
});

describe('schemas', () => {
  it('serves the image and images schemas', async () => {
    const image = json(await h.call('alice', { method: 'GET', url: '/image/v2/schemas/image' }));
    expect(image.name).toBe('image');
    expect(Object.keys(image.properties as object)).toContain('os_hash_value');
    const images = json(await h.call('alice', { method: 'GET', url: '/image/v2/schemas/images' }));
    expect(images.name).toBe('images');
  });
});
