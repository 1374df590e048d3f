import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../testing/api-harness.test-helper.js';
import { createImage, imageHarness, json, patch, upload } from './image.test-helper.js';

let h: ApiHarness;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-routes-test-'));
  h = await imageHarness({ uploadDir: join(dir, 'uploads') });
});
afterEach(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});

describe('version documents', () => {
  it('answers GET /image with 300 and /image/versions with 200, without a token', async () => {
    for (const [url, status] of [
      ['/image', 300],
      ['/image/versions', 200],
    ] as const) {
      const res = await h.call(null, { method: 'GET', url });
      expect(res.statusCode).toBe(status);
      const body = json<{ versions: { id: string; status: string; links: { href: string }[] }[] }>(res);
      expect(body.versions[0]).toEqual({
        id: 'v2.16',
        status: 'CURRENT',
        links: [{ rel: 'self', href: 'http://127.0.0.1:8774/image/v2/' }],
      });
      expect(body.versions.map((v) => v.id)).toContain('v2.0');
    }
  });
});

describe('image lifecycle', () => {
  it('creates, uploads, shows, downloads, patches and deletes an image', async () => {
    const created = await createImage(h, 'alice', { name: 'web', tags: ['base'], os_distro: 'debian' });
    expect(created).toMatchObject({
      name: 'web',
      status: 'queued',
      visibility: 'shared',
      owner: 'p1',
      protected: false,
      os_hidden: false,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      size: null,
      virtual_size: null,
      disk_format: 'raw',
      container_format: 'bare',
      min_disk: 0,
      min_ram: 0,
      tags: ['base'],
      os_distro: 'debian',
      schema: '/v2/schemas/image',
    });
    const id = created.id as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.self).toBe(`/v2/images/${id}`);
    expect(created.file).toBe(`/v2/images/${id}/file`);
    expect(created.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const bytes = randomBytes(300 * 1024);
    const md5 = createHash('md5').update(bytes).digest('hex');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect((await upload(h, 'alice', id, bytes)).statusCode).toBe(204);

    const shown = await h.call('alice', { method: 'GET', url: `/image/v2/images/${id}` });
    expect(shown.statusCode).toBe(200);
    expect(json(shown)).toMatchObject({
      id,
      status: 'active',
      checksum: md5,
      os_hash_algo: 'sha256',
      os_hash_value: sha256,
      size: bytes.length,
      stores: 'fs',
    });
    expect(created).not.toHaveProperty('stores');
    expect(await h.services.engine.images.get(id)).toMatchObject({
      sha256,
      sizeBytes: bytes.length,
      diskFormat: 'raw',
    });
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);

    const down = await h.call('alice', { method: 'GET', url: `/image/v2/images/${id}/file` });
    expect(down.statusCode).toBe(200);
    expect(down.headers['content-type']).toBe('application/octet-stream');
    expect(down.headers['content-md5']).toBe(md5);
    expect(Buffer.compare(down.rawPayload, bytes)).toBe(0);

    const patched = await patch(h, 'alice', id, [
      { op: 'replace', path: '/name', value: 'web-2' },
      { op: 'add', path: '/tags/-', value: 'gold' },
      { op: 'add', path: '/hw_disk_bus', value: 'virtio' },
      { op: 'remove', path: '/os_distro' },
      { op: 'replace', path: '/min_ram', value: 512 },
    ]);
    expect(patched.statusCode).toBe(200);
    const p = json(patched);
    expect(p).toMatchObject({ name: 'web-2', tags: ['base', 'gold'], hw_disk_bus: 'virtio', min_ram: 512 });
    expect(p).not.toHaveProperty('os_distro');

    expect((await upload(h, 'alice', id, Buffer.from('x'))).statusCode).toBe(409);

    expect((await h.call('alice', { method: 'DELETE', url: `/image/v2/images/${id}` })).statusCode).toBe(204);
    const gone = await h.call('alice', { method: 'GET', url: `/image/v2/images/${id}` });
    expect(gone.statusCode).toBe(404);
    expect(json(gone)).toMatchObject({ code: 404, title: 'Not Found' });
    expect(await h.services.engine.images.get(id)).toBeUndefined();
  });

  it('answers 204 for the data of a queued image and refuses an upload without formats', async () => {
    const img = await createImage(h, 'alice', { disk_format: null });
    const down = await h.call('alice', { method: 'GET', url: `/image/v2/images/${img.id}/file` });
    expect(down.statusCode).toBe(204);
    expect((await upload(h, 'alice', img.id as string, Buffer.from('abc'))).statusCode).toBe(400);
    const after = json(await h.call('alice', { method: 'GET', url: `/image/v2/images/${img.id}` }));
    expect(after.status).toBe('queued');
  });

  it('accepts a client-chosen uuid once (409 the second time)', async () => {
    const id = '0f6a3e47-1b6e-4c39-9a53-0dc3c7a1b2e4';
    expect((await createImage(h, 'alice', { id })).id).toBe(id);
    const dup = await h.call('alice', { method: 'POST', url: '/image/v2/images', payload: { id } });
    expect(dup.statusCode).toBe(409);
  });
});

describe('listing', () => {
  it('pages with next links relative to the Glance root and refuses an unknown marker', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await createImage(h, 'alice', { name: `n${i}` })).id as string);
    const seen: string[] = [];
    let url: string | undefined = '/v2/images?limit=2';
    let pages = 0;
    while (url) {
      const res = await h.call('alice', { method: 'GET', url: `/image${url}` });
      expect(res.statusCode).toBe(200);
      const body = json<{ images: { id: string }[]; first: string; schema: string; next?: string }>(res);
      expect(body.first).toBe('/v2/images?limit=2');
      expect(body.schema).toBe('/v2/schemas/images');
      expect(body.images.length).toBeLessThanOrEqual(2);
      seen.push(...body.images.map((i) => i.id));
      if (body.next) expect(body.next).toMatch(/^\/v2\/images\?limit=2&marker=[0-9a-f-]{36}$/);
      url = body.next;
      pages++;
    }
    // alice (p1) sees her 5 images and the engine's public cirros; the last page has no next
    expect(pages).toBe(3);
    expect(seen.length).toBe(6);
    expect(new Set(seen)).toEqual(new Set([...ids, 'cirros']));

    const bad = await h.call('alice', {
      method: 'GET',
      url: '/image/v2/images?marker=4f9c5b8e-0000-4000-8000-000000000000',
    });
    expect(bad.statusCode).toBe(400);
    expect(json(bad)).toMatchObject({ code: 400, title: 'Bad Request' });
    // another project's private image is no marker either
    const hidden = await createImage(h, 'bob', { visibility: 'private' });
    const other = await h.call('alice', { method: 'GET', url: `/image/v2/images?marker=${hidden.id}` });
    expect(other.statusCode).toBe(400);
  });

  it('filters by name, tag, status, visibility and sorts', async () => {
    await createImage(h, 'alice', { name: 'b', tags: ['x', 'y'] });
    await createImage(h, 'alice', { name: 'a', tags: ['x'] });
    const names = async (q: string) =>
      json<{ images: { name: string }[] }>(
        await h.call('alice', { method: 'GET', url: `/image/v2/images${q}` }),
      ).images.map((i) => i.name);
    expect(await names('?name=a')).toEqual(['a']);
    expect(await names('?tag=x&tag=y')).toEqual(['b']);
    expect(await names('?status=queued&sort_key=name&sort_dir=asc')).toEqual(['a', 'b']);
    expect(await names('?sort=name:desc&status=queued')).toEqual(['b', 'a']);
    expect(await names('?visibility=public')).toEqual(['cirros']);
    const first = json(await h.call('alice', { method: 'GET', url: '/image/v2/images?name=a' }));
    expect(first.first).toBe('/v2/images?name=a');
    expect(first).not.toHaveProperty('next');
    expect(
      (await h.call('alice', { method: 'GET', url: '/image/v2/images?sort_key=secret' })).statusCode,
    ).toBe(400);
    expect((await h.call('alice', { method: 'GET', url: '/image/v2/images?limit=-1' })).statusCode).toBe(400);
    expect((await h.call('alice', { method: 'GET', url: '/image/v2/images?visibility=x' })).statusCode).toBe(
      400,
    );
  });
});

describe('authorization and isolation', () => {
  it('hides a project’s images from other projects (404) and lets admins see them', async () => {
    const img = await createImage(h, 'alice', { visibility: 'private' });
    const id = img.id as string;
    const url = `/image/v2/images/${id}`;
    expect((await h.call('bob', { method: 'GET', url })).statusCode).toBe(404);
    expect((await patch(h, 'bob', id, [{ op: 'replace', path: '/name', value: 'x' }])).statusCode).toBe(404);
    expect((await h.call('bob', { method: 'DELETE', url })).statusCode).toBe(404);
    expect((await upload(h, 'bob', id, Buffer.from('x'))).statusCode).toBe(404);
    expect((await h.call('bob', { method: 'GET', url: `${url}/file` })).statusCode).toBe(404);
    const listOf = async (token: string) =>
      json<{ images: { id: string }[] }>(
        await h.call(token, { method: 'GET', url: '/image/v2/images' }),
      ).images.map((i) => i.id);
    expect(await listOf('bob')).not.toContain(id);
    expect((await h.call('admin', { method: 'GET', url })).statusCode).toBe(200);
    expect(await listOf('admin')).toContain(id);
    // shared (the default) without members is just as hidden
    const shared = await createImage(h, 'alice');
    expect((await h.call('bob', { method: 'GET', url: `/image/v2/images/${shared.id}` })).statusCode).toBe(
      404,
    );
  });

  it('lets readers read but not write', async () => {
    const img = await createImage(h, 'alice');
    const rita = await h.call('rita', { method: 'POST', url: '/image/v2/images', payload: { name: 'r' } });
    expect(rita.statusCode).toBe(403);
    expect(json(rita)).toMatchObject({ code: 403, title: 'Forbidden' });
    expect((await h.call('rita', { method: 'GET', url: `/image/v2/images/${img.id}` })).statusCode).toBe(200);
    expect((await upload(h, 'rita', img.id as string, Buffer.from('x'))).statusCode).toBe(403);
    expect((await h.call('rita', { method: 'DELETE', url: `/image/v2/images/${img.id}` })).statusCode).toBe(
      403,
    );
    const rename = await patch(h, 'rita', img.id as string, [{ op: 'replace', path: '/name', value: 'x' }]);
    expect(rename.statusCode).toBe(403);
  });

  it('needs an admin to publicize; others can see but not change public images', async () => {
    const bobPublic = await h.call('bob', {
      method: 'POST',
      url: '/image/v2/images',
      payload: { visibility: 'public' },
    });
    expect(bobPublic.statusCode).toBe(403);
    const pub = await createImage(h, 'admin', { visibility: 'public', name: 'pub' });
    const pubId = pub.id as string;
    expect((await h.call('bob', { method: 'GET', url: `/image/v2/images/${pubId}` })).statusCode).toBe(200);
    expect((await patch(h, 'bob', pubId, [{ op: 'replace', path: '/name', value: 'x' }])).statusCode).toBe(
      403,
    );
    expect((await h.call('bob', { method: 'DELETE', url: `/image/v2/images/${pubId}` })).statusCode).toBe(
      403,
    );
    const mine = (await createImage(h, 'alice')).id as string;
    const toPublic = await patch(h, 'alice', mine, [{ op: 'replace', path: '/visibility', value: 'public' }]);
    expect(toPublic.statusCode).toBe(403);
    const toCommunity = await patch(h, 'alice', mine, [
      { op: 'replace', path: '/visibility', value: 'community' },
    ]);
    expect(toCommunity.statusCode).toBe(200);
    // community images are listed for others only when they ask for them
    const list = async (q: string) =>
      json<{ images: { id: string }[] }>(
        await h.call('bob', { method: 'GET', url: `/image/v2/images${q}` }),
      ).images.map((i) => i.id);
    expect(await list('')).not.toContain(mine);
    expect(await list('?visibility=community')).toContain(mine);
    expect((await h.call('bob', { method: 'GET', url: `/image/v2/images/${mine}` })).statusCode).toBe(200);
  });

  it('refuses to delete a protected image', async () => {
    const id = (await createImage(h, 'alice', { protected: true })).id as string;
    expect((await h.call('alice', { method: 'DELETE', url: `/image/v2/images/${id}` })).statusCode).toBe(403);
    await patch(h, 'alice', id, [{ op: 'replace', path: '/protected', value: false }]);
    expect((await h.call('alice', { method: 'DELETE', url: `/image/v2/images/${id}` })).statusCode).toBe(204);
  });

  it('refuses another project as owner unless admin', async () => {
    const res = await h.call('alice', { method: 'POST', url: '/image/v2/images', payload: { owner: 'p2' } });
    expect(res.statusCode).toBe(403);
    const ok = await h.call('admin', { method: 'POST', url: '/image/v2/images', payload: { owner: 'p2' } });
    expect(ok.statusCode).toBe(201);
    expect(ok.headers.location).toBe(`http://127.0.0.1:8774/image/v2/images/${json(ok).id}`);
    expect(json(ok).owner).toBe('p2');
    expect((await h.call('bob', { method: 'GET', url: `/image/v2/images/${json(ok).id}` })).statusCode).toBe(
      200,
    );
  });

  it('needs a token', async () => {
    expect((await h.call(null, { method: 'GET', url: '/image/v2/images' })).statusCode).toBe(401);
  });
});
