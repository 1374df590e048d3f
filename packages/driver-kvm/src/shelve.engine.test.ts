import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type ComputeEngine, createCompute, type Instance, type LocalImageService } from '@nova-lfs/core';
import { internalsOf } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, probeImages, testRoot, waitConsole } from './kvm-env.test-helper.js';
import { PROBE } from './testing/index.js';

const run = promisify(execFile);
const HOST = 'kvm-shelve';
const TAGGED = new RegExp(`${PROBE.tagged} (NLFSTAG-[0-9a-f-]+)`);

describe.skipIf(!available)('shelve and unshelve through the engine on a real KVM host', () => {
  let root: string;
  let images: LocalImageService;
  let driver: KvmDriver;
  let compute: ComputeEngine;

  beforeAll(async () => {
    root = testRoot();
    ({ images } = await guestImages(root));
    // a blank 32 MiB disk; the guest writes a random tag to it at its first boot (dd conv=fsync)
    await probeImages(images, root, 'console=ttyS0 quiet nlfs.tag=1');
    driver = new KvmDriver({ hostId: HOST, stateDir: join(root, 'state') });
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'vm.shelve', vcpus: 1, ramMb: 256 }],
      hosts: [{ id: HOST, driver }],
      // the probe guest ignores ACPI: the shelve's power-off is forced after 1 s
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

  const read = (i: Instance) => () => driver.getConsoleOutput(i);
  const claimsOf = (id: string) => internalsOf(compute).claims.list({ instanceId: id });

  it('keeps what the guest wrote to its disk across shelve (snapshot, offload) and unshelve (boot from the snapshot), and across a power cycle after the snapshot image went; delete of a shelved instance removes its snapshot', async () => {
    const [vm] = await compute.create({
      name: 'shelved',
      projectId: 'p',
      userId: 'u',
      flavorId: 'vm.shelve',
      imageId: 'probe',
    });
    expect(vm).toMatchObject({ vmState: 'active', hostId: HOST });
    const tag = (await waitConsole(read(vm!), TAGGED)).match[1]!;

    // shelve: snapshot into the image service, guest gone, claim released, record kept
    const offloaded = await compute.shelve(vm!.id);
    expect(offloaded).toMatchObject({
      vmState: 'shelved_offloaded',
      powerState: 'nostate',
      hostId: null,
      taskState: null,
    });
    expect(await claimsOf(vm!.id)).toEqual([]);
    expect((await driver.listInstances()).map((g) => g.instanceId)).not.toContain(vm!.id);
    expect(await driver.getPowerState(vm!)).toBe('nostate');
    expect(existsSync(driver.instanceDir(vm!.id))).toBe(false);
    const snapshotId = offloaded.shelved!.imageId;
    const snapshot = await images.get(snapshotId);
    expect(snapshot).toMatchObject({
      diskFormat: 'qcow2',
      properties: {
        kernelImageId: 'kernel',
        ramdiskImageId: 'probe-initrd',
        imageType: 'snapshot',
        sourceInstance: vm!.id,
      },
    });
    const blob = (await images.acquire(snapshotId)).path;
    const bytes = await readFile(blob);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(snapshot!.sha256);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', blob])).stdout);
    expect(info).toMatchObject({ format: 'qcow2' });
    expect(info['backing-filename']).toBeUndefined(); // standalone: the base is merged in
    expect(bytes.includes(Buffer.from(tag))).toBe(true); // the tag is in the captured disk

    // unshelve: placed again, booted from the snapshot: the guest finds its tag, writes no new one
    const back = await compute.unshelve(vm!.id);
    expect(back).toMatchObject({ vmState: 'active', powerState: 'running', hostId: HOST, taskState: null });
    expect(back.shelved ?? null).toBeNull();
    expect(await claimsOf(vm!.id)).toHaveLength(1);
    expect(await driver.getPowerState(back)).toBe('running');
    await waitConsole(read(back), new RegExp(`${PROBE.disk} vda ${tag}`));
    expect(await driver.getConsoleOutput(back)).not.toMatch(TAGGED);
    expect(await images.get(snapshotId)).toBeUndefined(); // removed once it runs, as in Nova

    // the disk backs onto the driver's pin of the snapshot's bytes, which outlives the image: a
    // power cycle (a new QEMU opening the backing file) still boots the tagged disk
    const pin = join(driver.stateDir, '_base', snapshot!.sha256);
    expect(statSync(pin).nlink).toBe(1); // the image service's copy is gone
    const from = (await driver.getConsoleOutput(back)).length;
    await compute.powerOff(vm!.id);
    expect((await compute.powerOn(vm!.id)).powerState).toBe('running');
    await waitConsole(read(back), new RegExp(`${PROBE.disk} vda ${tag}`), from);

    // shelved again: the offload's destroy prunes the pin no disk backs onto any more
    const again = await compute.shelve(vm!.id);
    expect(again.vmState).toBe('shelved_offloaded');
    expect(existsSync(pin)).toBe(false);
    // deleting a shelved instance removes its snapshot (Nova's delete does)
    expect(await images.get(again.shelved!.imageId)).toBeDefined();
    await compute.delete(vm!.id);
    expect(await images.get(again.shelved!.imageId)).toBeUndefined();
    expect(await compute.list()).toEqual([]);
  }, 300_000);
});
