import { execFile } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { type ComputeEngine, createCompute, type Image, type ImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot, until } from './kvm-env.test-helper.js';
import { BOOT_MARKER } from './testing/index.js';

const run = promisify(execFile);
const markers = (text: string) => text.split(BOOT_MARKER).length - 1;

describe.skipIf(!available)('KvmDriver through the engine (real QEMU guests)', () => {
  let compute: ComputeEngine;
  let driver: KvmDriver;
  let root: string;
  let images: ImageService;
  let initrdOnly: Image;

  beforeAll(async () => {
    root = testRoot();
    ({ images, initrdOnly } = await guestImages(root));
    driver = new KvmDriver({
      hostId: 'kvm-engine',
      stateDir: `${root}/state`,
      softRebootTimeoutMs: 500,
    });
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'vm.tiny', vcpus: 1, ramMb: 192 }],
      hosts: [{ id: 'kvm-engine', driver }],
      engine: { powerOffTimeoutMs: 1_000 },
    });
  }, 120_000);

  afterAll(async () => {
    if (compute) {
      for (const i of await compute.list()) await compute.delete(i.id).catch(() => undefined);
      await compute.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('boots a guest (overlay disk + direct kernel boot) that prints the marker; pause, reboot, stop, start, delete', async () => {
    const [vm] = await compute.create({
      name: 'guest',
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.tiny',
      imageId: 'guest',
    });
    expect(vm!.vmState).toBe('active');
    const id = vm!.id;
    const dir = driver.instanceDir(id);
    expect(existsSync(`${dir}/disk.qcow2`)).toBe(true);
    const { stdout: info } = await run('qemu-img', ['info', '-U', '--output=json', `${dir}/disk.qcow2`]);
    // backed onto the driver's pin of the cached image: a hard link to the same bytes
    const backing = JSON.parse(info)['backing-filename'];
    const guestImage = (await images.get('guest'))!;
    expect(backing).toBe(`${driver.stateDir}/_base/${guestImage.sha256}`);
    expect(statSync(backing).ino).toBe(statSync((await images.acquire('guest')).path).ino);
    await until(async () => markers(await compute.consoleOutput(id)) === 1);

    await compute.pause(id);
    expect(await driver.getPowerState(vm!)).toBe('paused');
    expect((await compute.get(id)).vmState).toBe('paused');
    await compute.unpause(id);
    expect(await driver.getPowerState(vm!)).toBe('running');

    await compute.reboot(id, 'soft');
    await until(async () => markers(await compute.consoleOutput(id)) === 2);

    await compute.powerOff(id);
    expect(await driver.getPowerState(vm!)).toBe('shutdown');
    expect((await compute.get(id)).vmState).toBe('stopped');
    await compute.powerOn(id);
    await until(async () => markers(await compute.consoleOutput(id)) === 3);

    await compute.suspend(id);
    expect(await compute.get(id)).toMatchObject({ vmState: 'suspended', powerState: 'suspended' });
    expect(await driver.getPowerState(vm!)).toBe('suspended');
    await compute.resume(id);
    expect(await driver.getPowerState(vm!)).toBe('running');

    await compute.delete(id);
    const { stdout } = await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--uuid']);
    expect(stdout).not.toContain(id);
    expect(existsSync(dir)).toBe(false);
  }, 180_000);

  it("notices a guest destroyed behind its back through libvirt's lifecycle events (the safety-net poll is 30 s away): the instance goes to stopped", async () => {
    const [vm] = await compute.create({
      name: 'victim',
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.tiny',
      imageId: 'initrd-boot',
    });
    expect(vm!.vmState).toBe('active');
    await run('virsh', ['-c', 'qemu:///system', 'destroy', KvmDriver.domainName(vm!.id)]);
    await until(async () => (await compute.get(vm!.id)).vmState === 'stopped', 15_000);
    expect((await compute.get(vm!.id)).powerState).toBe('shutdown');
    await compute.delete(vm!.id);
  }, 120_000);

  it('lists its domains by metadata for reconciliation and reports unknown ones as orphans', async () => {
    const [vm] = await compute.create({
      name: `<odd & "name">`,
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.tiny',
      imageId: 'initrd-boot',
    });
    expect(await driver.listInstances()).toContainEqual({
      instanceId: vm!.id,
      powerState: 'running',
      projectId: 'p',
    });
    // a domain of this host the engine never made
    const stranger = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId: 'kvm-engine' });
    await driver.spawn({
      instance: stranger,
      flavor: stranger.flavor,
      image: initrdOnly,
      images,
      ports: [],
      volumes: [],
    });
    const report = await compute.reconcile();
    expect(report.orphans).toContainEqual({ instanceId: stranger.id, hostId: 'kvm-engine', reaped: false });
    expect(report.orphans.some((o) => o.instanceId === vm!.id)).toBe(false);
    await driver.destroy(stranger);
    expect((await driver.listInstances()).map((g) => g.instanceId)).not.toContain(stranger.id);
    await compute.delete(vm!.id);
  }, 120_000);

  it("boots from its own links to the kernel and initramfs: removing their images from the service does not break the guest's next start", async () => {
    const [vm] = await compute.create({
      name: 'own-boot-files',
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.tiny',
      imageId: 'initrd-boot',
    });
    const id = vm!.id;
    const dir = driver.instanceDir(id);
    const { stdout: xml } = await run('virsh', ['-c', 'qemu:///system', 'dumpxml', KvmDriver.domainName(id)]);
    const kernelImage = (await images.get('kernel'))!;
    const initrdImage = (await images.get('initrd'))!;
    expect(xml).toContain(`<kernel>${dir}/boot-${kernelImage.sha256}</kernel>`);
    expect(xml).toContain(`<initrd>${dir}/boot-${initrdImage.sha256}</initrd>`);
    await until(async () => markers(await compute.consoleOutput(id)) === 1);
    await compute.powerOff(id);
    // (the last test of this file: the images are gone for good)
    const cachedKernel = (await images.acquire('kernel')).path;
    await images.remove('kernel');
    await images.remove('initrd');
    expect(existsSync(cachedKernel)).toBe(false);
    await compute.powerOn(id);
    await until(async () => markers(await compute.consoleOutput(id)) === 2);
    await compute.delete(id);
    expect(existsSync(dir)).toBe(false);
  }, 180_000);
});
