import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, type Image, type Instance, type LocalImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, probeImages, tagRaw, testRoot, waitConsole } from './kvm-env.test-helper.js';
import { PROBE } from './testing/index.js';

describe.skipIf(!available)('KvmDriver volume hot-plug into a running guest (real libvirtd + QEMU)', () => {
  let root: string;
  let images: LocalImageService;
  let probe: Image;
  let driver: KvmDriver;
  let volumes: LocalVolumeAdapter;
  let guest: Instance;
  const consoleOf = () => driver.getConsoleOutput(guest);

  beforeAll(async () => {
    root = testRoot();
    ({ images } = await guestImages(root));
    probe = await probeImages(images, root);
    driver = new KvmDriver({ hostId: 'kvm-volumes', stateDir: join(root, 'state') });
    volumes = new LocalVolumeAdapter(join(root, 'volumes'));
    guest = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId: 'kvm-volumes' });
    await driver.spawn({
      instance: guest,
      flavor: guest.flavor,
      image: probe,
      images,
      ports: [],
      volumes: [],
    });
  }, 120_000);

  afterAll(async () => {
    if (driver) {
      await driver.destroy(guest).catch(() => undefined);
      await driver.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('declares the capability', () => {
    expect(driver.capabilities.volumeAttach).toBe(true);
  });

  it("attaches a raw and a qcow2 volume: the guest sees each disk appear (with the raw one's content) and disappear on detach", async () => {
    let { end } = await waitConsole(consoleOf, new RegExp(`${PROBE.block} \\[vda \\]`));
    const raw = await volumes.create({ id: 'hot-raw', sizeMiB: 16 });
    await tagRaw(raw.path, 'NLFSVOL-hot-raw-1');
    const [rawDev] = await volumes.connect(guest, 'kvm-volumes', [{ volumeId: 'hot-raw' }]);
    expect(await driver.attachVolume(guest, rawDev!)).toBe('vdb');
    expect(await driver.attachVolume(guest, rawDev!)).toBe('vdb'); // idempotent: the same disk
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.block} \\[vda vdb \\]`), end));
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.disk} vdb NLFSVOL-hot-raw-1`), end));

    const q = await volumes.create({ id: 'hot-qcow2', sizeMiB: 32, format: 'qcow2' });
    const [qDev] = await volumes.connect(guest, 'kvm-volumes', [{ volumeId: q.id, device: 'vdd' }]);
    expect(await driver.attachVolume(guest, qDev!)).toBe('vdd');
    // the guest names virtio disks in the order they appear, whatever libvirt's target says
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.block} \\[vda vdb vdc \\]`), end));

    await driver.detachVolume(guest, rawDev!);
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.block} \\[vda vdc \\]`), end));
    await driver.detachVolume(guest, rawDev!); // idempotent
    await driver.detachVolume(guest, qDev!);
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.block} \\[vda \\]`), end));
    await volumes.disconnect(guest, 'kvm-volumes');
    await volumes.delete('hot-raw');
    await volumes.delete('hot-qcow2');
    expect(await driver.getPowerState(guest)).toBe('running');
  }, 120_000);

  it('keeps an attached volume across a power cycle (persistent definition) and refuses bad devices with typed errors', async () => {
    const v = await volumes.create({ id: 'kept', sizeMiB: 8 });
    await tagRaw(v.path, 'NLFSVOL-kept');
    const [dev] = await volumes.connect(guest, 'kvm-volumes', [{ volumeId: 'kept', device: 'vdc' }]);
    await driver.attachVolume(guest, dev!);
    const before = (await consoleOf()).length;
    await driver.reboot(guest, 'hard');
    await waitConsole(consoleOf, new RegExp(`${PROBE.disk} vd[b-z] NLFSVOL-kept`), before);

    await expect(
      driver.attachVolume(guest, {
        ...dev!,
        volumeId: 'other',
        connection: { ...dev!.connection, path: '/x.raw' },
      }),
    ).rejects.toMatchObject({
      code: ErrorCode.Validation,
      fields: ['device'],
    });
    await expect(
      driver.attachVolume(guest, {
        volumeId: 'r',
        connection: { type: 'rbd', path: '/pool/x', format: 'raw' },
      }),
    ).rejects.toMatchObject({
      code: ErrorCode.Validation,
      fields: ['connection.type'],
    });
    await driver.detachVolume(guest, dev!);
    await volumes.disconnect(guest, 'kvm-volumes');
  }, 120_000);
});
