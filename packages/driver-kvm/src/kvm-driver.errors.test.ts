import { rmSync } from 'node:fs';
import { ErrorCode, type Image, type ImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmScopeConflictError } from './errors.js';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

describe.skipIf(!available)('KvmDriver errors and host scopes (real libvirtd + QEMU)', () => {
  let root: string;
  let images: ImageService;
  let initrdOnly: Image;
  const closing: KvmDriver[] = [];
  const driverFor = (hostId: string) => {
    const d = new KvmDriver({ hostId, stateDir: `${root}/state` });
    closing.push(d);
    return d;
  };

  beforeAll(async () => {
    root = testRoot();
    ({ images, initrdOnly } = await guestImages(root));
  }, 120_000);

  afterAll(async () => {
    for (const d of closing) {
      for (const g of await d.listInstances()) await d.destroy(buildTestInstance({ id: g.instanceId }));
      await d.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('refuses more vCPUs than the machine type allows with reschedule: false, leaving no domain', async () => {
    const driver = driverFor('kvm-errors');
    const flavor = { ...tinyTestFlavor, vcpus: 4096, ramMb: 192 };
    const i = buildTestInstance({ flavor, hostId: 'kvm-errors' });
    const err = await driver
      .spawn({ instance: i, flavor, image: initrdOnly, images, ports: [], volumes: [] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, retryable: false, reschedule: false });
    expect(await driver.getPowerState(i)).toBe('nostate');
  });

  it('refuses a second live driver serving the same hostId on one libvirtd; a closed one hands it over', async () => {
    const first = driverFor('kvm-scope');
    const second = driverFor('kvm-scope');
    await first.getHostReport();
    const err = await second.getHostReport().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvmScopeConflictError);
    expect(err).toMatchObject({ code: ErrorCode.Configuration, details: { setting: 'hostId' } });
    await first.close();
    await expect(second.getHostReport()).resolves.toMatchObject({ hypervisorType: 'qemu' });
  });

  it('keeps two hosts with their own hostIds on one libvirtd apart: each lists only its own domains', async () => {
    const a = driverFor('kvm-scope-a');
    const b = driverFor('kvm-scope-b');
    await a.getHostReport();
    await b.getHostReport();
    const boot = async (d: KvmDriver, hostId: string) => {
      const i = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId });
      await d.spawn({ instance: i, flavor: i.flavor, image: initrdOnly, images, ports: [], volumes: [] });
      return i;
    };
    const ia = await boot(a, 'kvm-scope-a');
    const ib = await boot(b, 'kvm-scope-b');
    expect((await a.listInstances()).map((g) => g.instanceId)).toEqual([ia.id]);
    expect((await b.listInstances()).map((g) => g.instanceId)).toEqual([ib.id]);
  }, 60_000);
});
