import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Instance, type LocalImageService, type PortBinding, ValidationError } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, probeImages, testRoot, until, waitConsole } from './kvm-env.test-helper.js';
import { PROBE } from './testing/index.js';

const run = promisify(execFile);

/** Whether the host has a network device of that name (libvirt's tap for the guest's NIC). */
async function hostHasLink(name: string): Promise<boolean> {
  return run('ip', ['link', 'show', 'dev', name]).then(
    () => true,
    () => false,
  );
}

/** A port as a network adapter binds it: a tap named from the port id, unique per test run. */
function port(n: number): PortBinding {
  const id = `${(process.pid % 1000).toString().padStart(3, '0')}nic${n}-port`;
  return {
    portId: id,
    networkId: 'net-test',
    macAddress: `fa:16:3e:4c:${(process.pid % 256).toString(16).padStart(2, '0')}:0${n}`,
    binding: { vifType: 'ethernet', tap: `tap${id.slice(0, 11)}` },
  };
}

describe.skipIf(!available)('KvmDriver network interfaces in a running guest (real libvirtd + QEMU)', () => {
  let root: string;
  let images: LocalImageService;
  let driver: KvmDriver;
  let guest: Instance;
  const consoleOf = () => driver.getConsoleOutput(guest);
  const boot = port(1);
  const hot = port(2);

  beforeAll(async () => {
    root = testRoot();
    ({ images } = await guestImages(root));
    const probe = await probeImages(images, root);
    driver = new KvmDriver({ hostId: 'kvm-nics', stateDir: join(root, 'state') });
    guest = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId: 'kvm-nics' });
    await driver.spawn({
      instance: guest,
      flavor: guest.flavor,
      image: probe,
      images,
      ports: [boot],
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

  it("boots with the spawn's port as a NIC on a tap libvirt made; hot-plugs a second one the guest sees, and unplugs it", async () => {
    expect(driver.capabilities.interfaceAttach).toBe(true);
    let { end } = await waitConsole(consoleOf, new RegExp(`${PROBE.net} \\[${boot.macAddress} \\]`));
    expect(await hostHasLink(boot.binding!.tap!)).toBe(true);

    await driver.attachInterface(guest, hot);
    await driver.attachInterface(guest, hot); // idempotent
    ({ end } = await waitConsole(
      consoleOf,
      new RegExp(`${PROBE.net} \\[${boot.macAddress} ${hot.macAddress} \\]`),
      end,
    ));
    expect(await hostHasLink(hot.binding!.tap!)).toBe(true);

    await driver.detachInterface(guest, hot);
    ({ end } = await waitConsole(consoleOf, new RegExp(`${PROBE.net} \\[${boot.macAddress} \\]`), end));
    await until(async () => !(await hostHasLink(hot.binding!.tap!)), 10_000, 'the tap to go');
    await driver.detachInterface(guest, hot); // idempotent
    expect(await driver.getPowerState(guest)).toBe('running');
  }, 120_000);

  it('keeps a hot-plugged NIC across a hard reboot (persistent definition); refuses hostile bindings with typed errors naming the field', async () => {
    await driver.attachInterface(guest, hot);
    const before = (await consoleOf()).length;
    await driver.reboot(guest, 'hard');
    await waitConsole(
      consoleOf,
      new RegExp(`${PROBE.net} \\[${boot.macAddress} ${hot.macAddress} \\]`),
      before,
    );
    await driver.detachInterface(guest, hot);

    for (const [bad, field] of [
      [{ ...hot, macAddress: "fa:16:3e:00:00:01'/><x" }, 'macAddress'],
      [{ ...hot, macAddress: undefined }, 'macAddress'],
      [{ ...hot, binding: { vifType: 'ethernet', tap: 'tap$(reboot)' } }, 'binding.tap'],
      [{ ...hot, binding: { vifType: 'ethernet', tap: 'tap-this-name-is-too-long' } }, 'binding.tap'],
      [{ ...hot, binding: { vifType: 'ethernet', tap: 'tap\u0000x' } }, 'binding.tap'],
      [{ ...hot, binding: { vifType: 'ovs' } }, 'binding.vifType'],
      [{ ...hot, binding: { vifType: 'bridge', bridge: 'br0; rm -rf /' } }, 'binding.bridge'],
    ] as const) {
      const e = await driver.attachInterface(guest, bad as PortBinding).catch((x: unknown) => x);
      expect(e, JSON.stringify(bad)).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).details.issues.map((i) => i.path)).toContain(field);
    }
    const after = (await consoleOf()).length;
    // nothing was plugged in: the guest still has its boot NIC only, and no tap was made
    await driver.attachInterface(guest, hot);
    await waitConsole(
      consoleOf,
      new RegExp(`${PROBE.net} \\[${boot.macAddress} ${hot.macAddress} \\]`),
      after,
    );
    await driver.detachInterface(guest, hot);
    expect(await hostHasLink('tap$(reboot)')).toBe(false);
  }, 180_000);
});
