import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '@nova-lfs/core';
import { buildTestInstance, describeDriverConformance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { Connection } from '@nova-lfs/libvirt';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { XEN_BOOT_MARKER } from './testing/index.js';
import { XenDriver } from './xen-driver.js';
import { available, nestedXenEnv, stopNestedXenIfBooted } from './xen-env.test-helper.js';

// Real Xen: Debian's Xen 4.17 + dom0 (libvirtd with the libxl driver) nested under QEMU TCG,
// booted once for this file by scripts/xen/start-dom0.sh and stopped at the end if this file
// booted it. Guests are Xen PV domains (TCG offers no VMX, so HVM and PVH cannot run here).
const driverFor = async (hostId: string) => {
  const { xen, root } = await nestedXenEnv();
  return new XenDriver({
    uri: xen.uri,
    hostId,
    stateDir: join(root, hostId),
    consoleLogDir: xen.consoleLogDir,
    softRebootTimeoutMs: 60_000,
  });
};

describe.skipIf(!available)('XenDriver against real Xen 4.17 (libxl in a nested dom0)', () => {
  afterAll(async () => {
    const env = await nestedXenEnv().catch(() => undefined);
    if (env) rmSync(env.root, { recursive: true, force: true });
    await stopNestedXenIfBooted();
  }, 120_000);

  describeDriverConformance(
    'XenDriver (real libxl)',
    async () => {
      const { images, guest } = await nestedXenEnv();
      const driver = await driverFor('xen-conformance');
      return { driver, images, image: guest, cleanup: () => driver.close() };
    },
    // a PV domain build under nested TCG takes 10-25 s on this loaded 2-CPU machine
    { timeoutMs: 150_000, unsupportedDiskFormat: 'tar' },
  );

  describe('a PV guest, for real', () => {
    let driver: XenDriver;
    let i: Instance;
    const markers = async () => (await driver.getConsoleOutput(i)).split(XEN_BOOT_MARKER).length - 1;
    /** Waits until the console shows `n` markers: xenconsoled's log file has no event, so it is polled (bounded). */
    const untilMarkers = async (n: number, ms = 240_000) => {
      const end = Date.now() + ms;
      while ((await markers()) < n) {
        if (Date.now() > end)
          throw new Error(`console shows ${await markers()} markers, not ${n}, after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    afterAll(async () => {
      if (i) await driver?.destroy(i).catch(() => undefined);
      await driver?.close();
    }, 120_000);

    it('boots: the guest kernel runs the initramfs, which prints its marker on the Xen console', async () => {
      const { images, guest } = await nestedXenEnv();
      driver = await driverFor('xen-real');
      const report = await driver.getHostReport();
      expect(report.hypervisorType).toBe('xen');
      i = buildTestInstance({ flavor: tinyTestFlavor, imageId: guest.id, hostId: 'xen-real' });
      await driver.spawn({ instance: i, flavor: i.flavor, image: guest, images, ports: [], volumes: [] });
      await untilMarkers(1);
      expect(await driver.listInstances()).toEqual([
        { instanceId: i.id, powerState: 'running', projectId: i.projectId },
      ]);
    }, 400_000);

    it('reboots (soft): the guest kernel reboots on Xen’s request, libxl restarts it and it prints a second marker', async () => {
      const t0 = Date.now();
      await driver.reboot(i, 'soft');
      // under the soft-reboot timeout (60 s): the libvirt started event came, no forced restart
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(await driver.getPowerState(i)).toBe('running');
      await untilMarkers(2);
    }, 400_000);

    it('powers off gracefully: the guest itself shuts down on Xen’s request, before the forced stop', async () => {
      const t0 = Date.now();
      await driver.powerOff(i, { timeoutMs: 120_000 });
      expect(Date.now() - t0).toBeLessThan(120_000);
      expect(await driver.getPowerState(i)).toBe('shutdown');
      expect(await driver.listInstances()).toEqual([
        { instanceId: i.id, powerState: 'shutdown', projectId: i.projectId },
      ]);
    }, 300_000);

    it('reports a stop behind its back (libvirt lifecycle event) on events$', async () => {
      await driver.powerOn(i);
      const event = firstValueFrom(
        driver.events$.pipe(
          filter((e) => e.instanceId === i.id),
          timeout(60_000),
        ),
      );
      const { xen } = await nestedXenEnv();
      const other = await Connection.open(xen.uri);
      try {
        await (await other.lookupByUUID(i.id)).destroy();
      } finally {
        await other.close();
      }
      expect(await event).toMatchObject({ instanceId: i.id, powerState: 'shutdown' });
      await driver.destroy(i);
      await driver.destroy(i);
      expect(await driver.getPowerState(i)).toBe('nostate');
    }, 300_000);
  });
});
