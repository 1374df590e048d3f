import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../testing/api-harness.test-helper.js';
import { imageHarness, json, patch } from './image.test-helper.js';
import { registerImageRecord } from './image-record.js';

let h: ApiHarness;

beforeEach(async () => {
  h = await imageHarness();
});
afterEach(async () => {
  await h.close();
});

const show = (token: string, id: string) => h.call(token, { method: 'GET', url: `/image/v2/images/${id}` });
const listIds = async (token: string) =>
  json<{ images: { id: string }[] }>(
    await h.call(token, { method: 'GET', url: '/image/v2/images' }),
  ).images.map((i) => i.id);

describe('images that exist only in the engine', () => {
  it('lists an imported image as public and active, computing its md5 on first show', async () => {
    const bytes = randomBytes(4096);
    await h.services.engine.images.import(
      {
        id: 'debian',
        name: 'debian-12',
        diskFormat: 'qcow2',
        properties: { hypervisorType: 'qemu', os_distro: 'debian' },
      },
      { kind: 'bytes', bytes },
    );
    expect(await listIds('bob')).toContain('debian');
    const listed = json<{ images: Record<string, unknown>[] }>(
      await h.call('bob', { method: 'GET', url: '/image/v2/images?name=debian-12' }),
    ).images[0];
    expect(listed).toMatchObject({
      id: 'debian',
      status: 'active',
      visibility: 'public',
      owner: null,
      checksum: null,
    });
    const res = await show('bob', 'debian');
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({
      name: 'debian-12',
      status: 'active',
      visibility: 'public',
      disk_format: 'qcow2',
      container_format: 'bare',
      size: bytes.length,
      checksum: createHash('md5').update(bytes).digest('hex'),
      os_hash_algo: 'sha256',
      os_hash_value: createHash('sha256').update(bytes).digest('hex'),
      hypervisor_type: 'qemu',
      os_distro: 'debian',
    });
    const down = await h.call('bob', { method: 'GET', url: '/image/v2/images/debian/file' });
    expect(Buffer.compare(down.rawPayload, bytes)).toBe(0);
    // a member cannot change or delete the operator's image; an admin can
    expect((await patch(h, 'bob', 'debian', [{ op: 'replace', path: '/name', value: 'x' }])).statusCode).toBe(
      403,
    );
    expect((await h.call('bob', { method: 'DELETE', url: '/image/v2/images/debian' })).statusCode).toBe(403);
    expect((await h.call('admin', { method: 'DELETE', url: '/image/v2/images/debian' })).statusCode).toBe(
      204,
    );
    expect(await h.services.engine.images.get('debian')).toBeUndefined();
  });

  it('shows an image whose bytes cannot be read without a checksum (the fake cloud’s cirros)', async () => {
    const res = await show('alice', 'cirros');
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({
      id: 'cirros',
      status: 'active',
      checksum: null,
      os_hash_value: 'a'.repeat(64),
    });
    expect((await h.call('alice', { method: 'GET', url: '/image/v2/images/cirros/file' })).statusCode).toBe(
      503,
    );
  });

  it('makes a snapshot private to its instance’s project, also after the instance is gone', async () => {
    const [vm] = await h.cloud.compute.create(h.cloud.request({ projectId: 'p1' }));
    await h.services.engine.images.import(
      { id: 'snap-1', name: 'vm-snap', diskFormat: 'qcow2', properties: { sourceInstance: vm!.id } },
      { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
    );
    expect(await listIds('alice')).toContain('snap-1');
    expect(await listIds('bob')).not.toContain('snap-1');
    expect((await show('bob', 'snap-1')).statusCode).toBe(404);
    const shown = json(await show('alice', 'snap-1'));
    expect(shown).toMatchObject({
      owner: 'p1',
      visibility: 'private',
      instance_uuid: vm!.id,
      image_type: 'snapshot',
    });
    await h.cloud.compute.delete(vm!.id);
    expect(json(await show('alice', 'snap-1')).owner).toBe('p1');
  });

  it('registerImageRecord gives an engine image its owner before anyone lists it', async () => {
    await h.services.engine.images.import(
      { id: 'snap-2', name: 'engine-name', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([9]) },
    );
    await registerImageRecord(h.services, { imageId: 'snap-2', ownerProjectId: 'p2', name: 'bob-snap' });
    expect(await listIds('alice')).not.toContain('snap-2');
    expect(await listIds('bob')).toContain('snap-2');
    expect(json(await show('bob', 'snap-2'))).toMatchObject({
      name: 'bob-snap',
      owner: 'p2',
      visibility: 'private',
      status: 'active',
    });
    await expect(
      registerImageRecord(h.services, { imageId: 'missing', ownerProjectId: 'p2' }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('forgets a record whose engine image was removed behind its back', async () => {
    await h.services.engine.images.import(
      { id: 'gone', name: 'gone', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    await registerImageRecord(h.services, { imageId: 'gone', ownerProjectId: 'p1' });
    await h.services.engine.images.remove('gone');
    expect((await show('alice', 'gone')).statusCode).toBe(404);
    expect(await listIds('alice')).not.toContain('gone');
  });
});
