import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Flavor, Image, Instance, LocalImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, probeImages, testRoot, waitConsole } from './kvm-env.test-helper.js';
import { secondUri, twoHosts } from './migration-env.test-helper.js';
import { PROBE } from './testing/index.js';

const small: Flavor = { ...tinyTestFlavor, id: 'vm.small', vcpus: 1, ramMb: 192 };
const big: Flavor = { ...tinyTestFlavor, id: 'vm.big', vcpus: 2, ramMb: 320 };
const CPU = new RegExp(`${PROBE.cpu} nproc=(\\d+) memkb=(\\d+)`);
const TAGGED = new RegExp(`${PROBE.tagged} (NLFSTAG-[0-9a-f-]+)`);

describe.skipIf(!available)('KvmDriver resize, cold migration and rescue (real libvirtd + QEMU)', () => {
  let root: string;
  let images: LocalImageService;
  let probe: Image;
  let rescueImage: Image;
  const drivers: KvmDriver[] = [];
  const instances: Instance[] = [];
  const driverFor = (hostId: string, uri = 'qemu:///system') => {
    const d = new KvmDriver({ uri, hostId, stateDir: join(root, 'state'), moveShutdownTimeoutMs: 300 });
    drivers.push(d);
    return d;
  };
  /** Boots a probe guest that tags its disk, and returns it with the tag and its CPU line. */
  const boot = async (d: KvmDriver) => {
    const i = buildTestInstance({ flavor: small, hostId: d.hostId });
    instances.push(i);
    await d.spawn({ instance: i, flavor: small, image: probe, images, ports: [], volumes: [] });
    const read = () => d.getConsoleOutput(i);
    const tag = (await waitConsole(read, TAGGED)).match[1]!;
    const cpu = (await waitConsole(read, CPU)).match;
    return { i, tag, nproc: Number(cpu[1]), memKb: Number(cpu[2]) };
  };

  beforeAll(async () => {
    root = testRoot();
    ({ images } = await guestImages(root));
    probe = await probeImages(images, root, 'console=ttyS0 quiet nlfs.tag=1');
    rescueImage = await probeImages(images, root, 'console=ttyS0 quiet nlfs.marker=rescue', 'probe-rescue');
  }, 120_000);

  afterAll(async () => {
    for (const d of drivers) {
      for (const i of instances) await d.destroy(i).catch(() => undefined);
      await d.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('declares the capabilities', () => {
    const d = driverFor('kvm-moves-caps');
    expect(d.capabilities).toMatchObject({ coldMigration: true, rescue: true });
  });

  it('resizes in place: the guest sees the new vCPUs and memory and its own disk; revert restores the old ones; confirm drops the kept copy', async () => {
    const d = driverFor('kvm-resize');
    const { i, tag, nproc, memKb } = await boot(d);
    expect(nproc).toBe(1);
    const read = () => d.getConsoleOutput(i);
    const oldConsole = (await read()).length;

    const target = await d.prepareColdMigrationTarget(i, big);
    expect(target).toMatchObject({ hostId: 'kvm-resize', driverKind: 'kvm', sameHost: true });
    const disks = await d.migrateDisksAndPowerOff(i, target);
    expect(existsSync(`${d.instanceDir(i.id)}_resize/disk.qcow2`)).toBe(true);
    await d.finishMigration({
      instance: i,
      flavor: big,
      image: probe,
      images,
      disks,
      powerOn: true,
      volumes: [],
    });
    const resized = (await waitConsole(read, CPU)).match;
    expect(Number(resized[1])).toBe(2);
    expect(Number(resized[2])).toBeGreaterThan(memKb + 100 * 1024);
    await waitConsole(read, new RegExp(`${PROBE.disk} vda ${tag}`)); // the same disk, not re-tagged
    expect(await read()).not.toMatch(TAGGED);

    await d.revertMigrationOnDestination(i);
    expect(existsSync(`${d.instanceDir(i.id)}_resize/disk.qcow2`)).toBe(true); // the kept copy survives
    await d.finishRevertMigration(i, true);
    const reverted = (await waitConsole(read, CPU, oldConsole)).match;
    expect([Number(reverted[1]), Number(reverted[2])]).toEqual([1, memKb]);
    expect(await d.getPowerState(i)).toBe('running');

    // resize again and confirm: the kept copy goes, the resized guest stays
    const disks2 = await d.migrateDisksAndPowerOff(i, await d.prepareColdMigrationTarget(i, big));
    await d.finishMigration({
      instance: i,
      flavor: big,
      image: probe,
      images,
      disks: disks2,
      powerOn: true,
      volumes: [],
    });
    await d.confirmMigration(i);
    await d.confirmMigration(i);
    expect(existsSync(`${d.instanceDir(i.id)}_resize`)).toBe(false);
    expect(Number((await waitConsole(read, CPU)).match[1])).toBe(2);
  }, 180_000);

  it.skipIf(!twoHosts)(
    'cold-migrates to a second libvirtd: the guest runs there on a copy of its disk; confirm leaves nothing on the source',
    async () => {
      const a = driverFor('kvm-cold-a');
      const b = driverFor('kvm-cold-b', secondUri);
      const { i, tag } = await boot(a);
      const target = await b.prepareColdMigrationTarget(i, small);
      expect(target.sameHost).toBe(false);
      const disks = await a.migrateDisksAndPowerOff(i, target);
      const moved = { ...i, hostId: 'kvm-cold-b' };
      await b.finishMigration({
        instance: moved,
        flavor: small,
        image: probe,
        images,
        disks,
        powerOn: true,
        volumes: [],
      });
      expect(await b.getPowerState(moved)).toBe('running');
      expect(await a.getPowerState(i)).toBe('nostate');
      await waitConsole(() => b.getConsoleOutput(moved), new RegExp(`${PROBE.disk} vda ${tag}`));
      await a.confirmMigration(i);
      expect(existsSync(`${a.instanceDir(i.id)}_resize`)).toBe(false);
      expect((await a.listInstances()).some((g) => g.instanceId === i.id)).toBe(false);
      expect((await b.listInstances()).map((g) => g.instanceId)).toContain(i.id);
      await b.destroy(moved);
    },
    180_000,
  );

  it('rescues: boots the rescue image with the original disk readable as the second disk; unrescue boots the instance again', async () => {
    const d = driverFor('kvm-rescue');
    const { i, tag } = await boot(d);
    const read = () => d.getConsoleOutput(i);
    let from = (await read()).length;
    await d.rescue({ instance: i, flavor: small, rescueImage, images });
    await waitConsole(read, new RegExp(`${PROBE.up} rescue`), from);
    await waitConsole(read, new RegExp(`${PROBE.disk} vdb ${tag}`), from);
    expect(existsSync(join(d.instanceDir(i.id), 'rescue.qcow2'))).toBe(true);
    from = (await read()).length;
    await d.unrescue(i);
    await waitConsole(read, new RegExp(`${PROBE.up} probe`), from);
    await waitConsole(read, new RegExp(`${PROBE.block} \\[vda \\]`), from);
    await waitConsole(read, new RegExp(`${PROBE.disk} vda ${tag}`), from);
    expect(existsSync(join(d.instanceDir(i.id), 'rescue.qcow2'))).toBe(false);
    await d.unrescue(i); // idempotent
    expect(await d.getPowerState(i)).toBe('running');
  }, 180_000);
});
