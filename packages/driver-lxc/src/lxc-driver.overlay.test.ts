import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image, Instance, LocalImageService } from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './container-config.js';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';
import { containerName } from './names.js';
import { BASES_DIR } from './rootfs-cache.js';

const HOST = 'overlay';

describe.skipIf(!available)("LxcDriver with rootfs: 'overlay' (real LXC, overlayfs)", () => {
  const lxcPath = tempLxcPath();
  const driver = new LxcDriver({ hostId: HOST, lxcPath, rootfs: 'overlay', stopTimeoutSeconds: 2 });
  let images: LocalImageService;
  let image: Image;
  let imageDir: string;

  const request = (instance: Instance, img = image) => ({
    instance,
    flavor: instance.flavor,
    image: img,
    images,
    ports: [],
    volumes: [],
  });
  const spawn = async (img = image): Promise<Instance> => {
    const instance = buildTestInstance({ imageId: img.id, hostId: HOST });
    await driver.spawn(request(instance, img));
    return instance;
  };
  const sh = async (i: Instance, line: string): Promise<string> =>
    (await driver.tools.run('lxc-attach', containerName(i.id), ['--clear-env', '--', '/bin/sh', '-c', line]))
      .stdout;
  const bases = () => readdir(join(lxcPath, BASES_DIR)).catch(() => [] as string[]);
  /** sha256 of every file under a base (names and bytes): proves a base was not written to. */
  const digest = async (dir: string): Promise<string> => {
    const h = createHash('sha256');
    for (const entry of (await readdir(dir, { recursive: true, withFileTypes: true })).sort((a, b) =>
      join(a.parentPath, a.name).localeCompare(join(b.parentPath, b.name)),
    )) {
      const path = join(entry.parentPath, entry.name);
      h.update(path);
      if (entry.isFile()) h.update(await readFile(path));
    }
    return h.digest('hex');
  };

  beforeAll(async () => {
    ({ images, image, dir: imageDir } = await busyboxImages());
  });
  afterAll(async () => {
    await driver.close();
    await removeHostContainers(lxcPath, HOST);
    await rm(imageDir, { recursive: true, force: true });
  });

  it('shares one unpacked base per image between containers, each writing only to its own upper directory', async () => {
    const [a, b] = await Promise.all([spawn(), spawn()]);
    expect(await bases()).toEqual([image.sha256]);
    const base = join(lxcPath, BASES_DIR, image.sha256);
    const before = await digest(base);
    const rootfs = parseConfig(await readFile(join(lxcPath, containerName(a.id), 'config'), 'utf8')).find(
      ([k]) => k === 'lxc.rootfs.path',
    )?.[1];
    expect(rootfs).toBe(`overlay:${base}:${join(lxcPath, containerName(a.id), 'upper')}`);
    await sh(a, 'echo a >/root/marker && rm /bin/vi');
    expect(await sh(b, 'test -e /root/marker && echo seen || echo unseen; test -e /bin/vi && echo vi')).toBe(
      'unseen\nvi\n',
    );
    expect(await digest(base)).toBe(before);
    await driver.destroy(a);
    await driver.destroy(b);
  });

  it('snapshots the merged view, running (through init) and stopped (a read-only overlay mount): writes in, deletions out', async () => {
    const i = await spawn();
    await sh(i, 'echo kept >/root/marker && rm /bin/vi');
    const running = await driver.snapshot(i, { name: 'running', images });
    await driver.powerOff(i);
    const stopped = await driver.snapshot(i, { name: 'stopped', images });
    expect(await readdir(join(lxcPath, containerName(i.id)))).not.toContain('snapshot'); // unmounted, removed
    for (const snap of [running, stopped]) {
      const local = await images.acquire(snap.id);
      expect(
        createHash('sha256')
          .update(await readFile(local.path))
          .digest('hex'),
      ).toBe(snap.sha256);
      const child = await spawn(snap);
      expect(await sh(child, 'cat /root/marker; test -e /bin/vi && echo vi || echo no-vi')).toBe(
        'kept\nno-vi\n',
      );
      await driver.destroy(child);
    }
    expect((await bases()).sort()).toEqual([image.sha256, running.sha256, stopped.sha256].sort());
    await driver.destroy(i);
  });

  it('rebuilds onto a fresh upper directory, and prunes bases no container uses', async () => {
    const i = await spawn();
    await sh(i, 'echo old >/root/marker');
    await driver.rebuild(request(i));
    expect(await sh(i, 'test -e /root/marker && echo kept || echo gone')).toBe('gone\n');
    const pruned = await driver.pruneRootfsCache(0);
    expect(pruned).not.toContain(image.sha256); // in use by i
    expect(await bases()).toEqual([image.sha256]);
    await driver.destroy(i);
    expect(await driver.pruneRootfsCache(0)).toEqual([image.sha256]);
    expect(await bases()).toEqual([]);
  });
});
