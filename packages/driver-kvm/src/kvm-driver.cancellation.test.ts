import { rmSync } from 'node:fs';
import { DeadlineExceededError, type Image, type ImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

describe.skipIf(!available)('KvmDriver cancellation (real libvirtd + QEMU)', () => {
  let root: string;
  let driver: KvmDriver;
  let images: ImageService;
  let initrdOnly: Image;
  const instance = () =>
    buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId: 'kvm-cancel' });
  const request = (i: ReturnType<typeof instance>, signal?: AbortSignal) => ({
    instance: i,
    flavor: i.flavor,
    image: initrdOnly,
    images,
    ports: [],
    volumes: [],
    ...(signal ? { signal } : {}),
  });

  beforeAll(async () => {
    root = testRoot();
    ({ images, initrdOnly } = await guestImages(root));
    driver = new KvmDriver({ hostId: 'kvm-cancel', stateDir: `${root}/state` });
    await driver.getHostReport();
  }, 120_000);

  afterAll(async () => {
    if (driver) {
      for (const g of await driver.listInstances())
        await driver.destroy(buildTestInstance({ id: g.instanceId }));
      await driver.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('leaves its graceful-shutdown wait when the signal aborts: rejects with the reason, the guest is not forced off', async () => {
    const i = instance();
    await driver.spawn(request(i));
    const controller = new AbortController();
    const reason = new DeadlineExceededError({ operation: 'powerOff', timeoutMs: 1_000 });
    // the test guest ignores ACPI power-button presses, so without the abort this waits 120 s
    const stopping = driver.powerOff(i, { timeoutMs: 120_000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 1_000);
    await expect(stopping).rejects.toBe(reason);
    expect(await driver.getPowerState(i)).toBe('running');
    await driver.destroy(i);
    expect(await driver.getPowerState(i)).toBe('nostate');
  }, 30_000);

  it('lets a destroy right after an aborted spawn wait for the spawn to undo its domain and directory', async () => {
    for (const delayMs of [0, 50, 150, 400]) {
      const i = instance();
      const controller = new AbortController();
      const reason = new DeadlineExceededError({ operation: 'spawn', timeoutMs: delayMs });
      const spawning = driver.spawn(request(i, controller.signal)).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      setTimeout(() => controller.abort(reason), delayMs);
      const result = await spawning;
      if (result !== 'resolved') expect(result).toBe(reason);
      await driver.destroy(i); // at once: the spawn may still be inside libvirt
      expect(await driver.getPowerState(i)).toBe('nostate');
      expect((await driver.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);
    }
  }, 120_000);
});
