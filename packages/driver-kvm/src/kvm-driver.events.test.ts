import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Image, ImageService, Instance, PowerStateEvent } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

const run = promisify(execFile);
const virsh = (...args: string[]) => run('virsh', ['-c', 'qemu:///system', ...args]);

describe.skipIf(!available)(
  "KvmDriver power-state events from libvirt's lifecycle events (real libvirtd + QEMU)",
  () => {
    let root: string;
    let images: ImageService;
    let initrdOnly: Image;
    const drivers: KvmDriver[] = [];
    const driverFor = (hostId: string, o: { pollIntervalMs?: number; lifecycleEvents?: boolean } = {}) => {
      const d = new KvmDriver({ hostId, stateDir: `${root}/state`, ...o });
      drivers.push(d);
      return d;
    };
    const boot = async (d: KvmDriver): Promise<Instance> => {
      const i = buildTestInstance({ flavor: { ...tinyTestFlavor, ramMb: 192 }, hostId: d.hostId });
      await d.spawn({ instance: i, flavor: i.flavor, image: initrdOnly, images, ports: [], volumes: [] });
      return i;
    };
    const next = (d: KvmDriver, id: string, ms = 10_000): Promise<PowerStateEvent> =>
      firstValueFrom(
        d.events$.pipe(
          filter((e) => e.instanceId === id),
          timeout(ms),
        ),
      );

    beforeAll(async () => {
      root = testRoot();
      ({ images, initrdOnly } = await guestImages(root));
    }, 120_000);

    afterAll(async () => {
      for (const d of drivers) {
        for (const g of await d.listInstances()) await d.destroy(buildTestInstance({ id: g.instanceId }));
        await d.close();
      }
      if (root) rmSync(root, { recursive: true, force: true });
    }, 120_000);

    it('reports a guest destroyed from outside (virsh destroy) at once, with no poll in time to see it; only to its own host', async () => {
      // a poll every 10 minutes: whatever arrives within the test came from libvirt's events
      const driver = driverFor('kvm-events', { pollIntervalMs: 600_000 });
      const other = driverFor('kvm-events-other', { pollIntervalMs: 600_000 });
      await driver.getHostReport();
      await other.getHostReport();
      const seenByOther: PowerStateEvent[] = [];
      other.events$.subscribe((e) => seenByOther.push(e));
      const i = await boot(driver);

      const stopped = next(driver, i.id);
      const t0 = Date.now();
      const { stdout } = await virsh('destroy', KvmDriver.domainName(i.id));
      const virshDone = Date.now();
      expect(stdout).toContain('destroyed');
      const event = await stopped;
      expect(event.powerState).toBe('shutdown');
      // the event was received while virsh was still running or right after it returned
      expect(event.at - t0).toBeLessThan(virshDone - t0 + 1_000);
      expect(await driver.getPowerState(i)).toBe('shutdown');

      // the driver's own power-on is not reported as a change; an outside pause right after is
      const paused = next(driver, i.id);
      await driver.powerOn(i);
      await virsh('suspend', KvmDriver.domainName(i.id));
      expect((await paused).powerState).toBe('paused');

      // a guest removed from outside (destroyed and undefined) is reported gone
      const gone = firstValueFrom(
        driver.events$.pipe(
          filter((e) => e.instanceId === i.id && e.powerState === 'nostate'),
          timeout(10_000),
        ),
      );
      await virsh('destroy', KvmDriver.domainName(i.id));
      await virsh('undefine', KvmDriver.domainName(i.id));
      expect((await gone).powerState).toBe('nostate');
      // the other host on the same libvirtd received the same libvirt events and reported none of them
      expect(seenByOther.filter((e) => e.instanceId === i.id)).toEqual([]);
    }, 90_000);

    it('still reports an outside destroy through the safety-net poll when lifecycle events are off', async () => {
      const driver = driverFor('kvm-events-polled', { lifecycleEvents: false, pollIntervalMs: 300 });
      await driver.getHostReport();
      const i = await boot(driver);
      const stopped = next(driver, i.id);
      await virsh('destroy', KvmDriver.domainName(i.id));
      expect((await stopped).powerState).toBe('shutdown');
    }, 60_000);
  },
);
