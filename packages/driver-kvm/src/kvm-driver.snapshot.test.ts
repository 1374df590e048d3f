import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DriverError, type Image, type ImageService, type Instance } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedImageError } from './errors.js';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot, until } from './kvm-env.test-helper.js';

const run = promisify(execFile);

// libvirt's test:///default hypervisor: real domains (pause, resume, state) and real overlays and
// qemu-img, with no QEMU holding the disk; the real-guest path is shelve.engine.test.ts.
describe.skipIf(!available)("KvmDriver snapshot (libvirt's test:///default, real qemu-img)", () => {
  let root: string;
  let images: ImageService;
  let guest: Image;
  let initrdOnly: Image;
  let driver: KvmDriver;
  const booted: Instance[] = [];
  const boot = async (image: Image): Promise<Instance> => {
    const i = buildTestInstance({ hostId: 'kvm-snap', imageId: image.id, flavor: tinyTestFlavor });
    await driver.spawn({ instance: i, flavor: i.flavor, image, images, ports: [], volumes: [] });
    booted.push(i);
    return i;
  };

  beforeAll(async () => {
    root = testRoot();
    ({ images, guest, initrdOnly } = await guestImages(root));
    driver = new KvmDriver({ uri: 'test:///default', hostId: 'kvm-snap', stateDir: `${root}/state` });
  }, 120_000);

  afterAll(async () => {
    for (const i of booted) await driver?.destroy(i).catch(() => undefined);
    await driver?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('declares the capability', () => {
    expect(driver.capabilities.snapshot).toBe(true);
  });

  it('captures a running guest as a standalone qcow2 with its sha256 and the boot properties; the guest runs on, a paused one stays paused', async () => {
    const i = await boot(guest);
    const image = await driver.snapshot(i, { name: 'snap-1', images });
    expect(image).toMatchObject({
      name: 'snap-1',
      diskFormat: 'qcow2',
      containerFormat: 'bare',
      properties: {
        ...guest.properties,
        imageType: 'snapshot',
        sourceInstance: i.id,
      },
    });
    const blob = (await images.acquire(image.id)).path;
    expect(
      createHash('sha256')
        .update(await readFile(blob))
        .digest('hex'),
    ).toBe(image.sha256);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', blob])).stdout);
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBeUndefined();
    expect(await driver.getPowerState(i)).toBe('running');
    // no temporary copy left in the instance directory
    expect(readdirSync(driver.instanceDir(i.id)).filter((f) => f.startsWith('snapshot-'))).toEqual([]);

    await driver.pause(i);
    await driver.snapshot(i, { name: 'snap-2', images });
    expect(await driver.getPowerState(i)).toBe('paused');
  });

  it('refuses a guest without a disk with a non-retryable DriverError naming the image', async () => {
    const i = await boot(initrdOnly);
    const before = (await images.list()).length;
    const e = await driver.snapshot(i, { name: 'nope', images }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).details).toMatchObject({
      operation: 'snapshot',
      instanceId: i.id,
      retryable: false,
      reschedule: false,
    });
    expect((e as DriverError).cause).toBeInstanceOf(UnsupportedImageError);
    expect(((e as DriverError).cause as UnsupportedImageError).details.imageId).toBe(initrdOnly.id);
    expect((await images.list()).length).toBe(before);
  });

  it('on abort rejects with the reason, resumes the guest and removes an import that completes later', async () => {
    const i = await boot(guest);
    const before = (await images.list()).map((m) => m.id);
    let imported!: () => void;
    const entered = new Promise<void>((r) => {
      imported = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // the real image service, whose import answers only once the test lets it
    const held: ImageService = {
      get: (id) => images.get(id),
      list: () => images.list(),
      register: (m, s) => images.register(m, s),
      acquire: (id) => images.acquire(id),
      remove: (id) => images.remove(id),
      import: async (m, s) => {
        const image = await images.import(m, s);
        imported();
        await gate;
        return image;
      },
    };
    const ac = new AbortController();
    const snap = driver.snapshot(i, { name: 'aborted', images: held, signal: ac.signal });
    await entered;
    expect((await images.list()).length).toBe(before.length + 1); // stored, not yet answered
    const reason = new Error('deadline');
    ac.abort(reason);
    await expect(snap).rejects.toBe(reason);
    release();
    await until(async () => (await images.list()).length === before.length, 10_000, 'the late import to go');
    expect((await images.list()).map((m) => m.id)).toEqual(before);
    expect(await driver.getPowerState(i)).toBe('running');
  });
});
