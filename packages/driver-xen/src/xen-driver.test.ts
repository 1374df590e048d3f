import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type Image, LocalImageService, type PowerStateEvent } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { Connection } from '@nova-lfs/libvirt';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importXenGuestImages } from './testing/index.js';
import { XenDriver } from './xen-driver.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-xen-drv-'));
const images = new LocalImageService(join(root, 'images'));
let guest: Image;
const drivers: XenDriver[] = [];
const driver = (hostId: string, extra: Partial<ConstructorParameters<typeof XenDriver>[0]> = {}) => {
  const d = new XenDriver({
    uri: 'test:///default',
    hostId,
    stateDir: join(root, 'state'),
    dom0StateDir: '/dom0/view',
    consoleLogDir: join(root, 'console'),
    ...extra,
  });
  drivers.push(d);
  return d;
};
const instance = (overrides: Parameters<typeof buildTestInstance>[0] = {}) =>
  buildTestInstance({ flavor: tinyTestFlavor, imageId: guest.id, hostId: 'h', ...overrides });
const spawnOn = (d: XenDriver, i: ReturnType<typeof instance>, image = guest) =>
  d.spawn({ instance: i, flavor: i.flavor, image, images, ports: [], volumes: [] });

beforeAll(async () => {
  writeFileSync(join(root, 'kernel'), 'kernel bytes');
  ({ guest } = await importXenGuestImages(images, root, join(root, 'kernel')));
});
afterAll(async () => {
  for (const d of drivers) await d.close();
  rmSync(root, { recursive: true, force: true });
});

describe('XenDriver against test:///default', () => {
  it('stages kernel and initramfs by sha256 and points the domain at them as dom0 sees them', async () => {
    const d = driver('xen-stage');
    const i = instance();
    await spawnOn(d, i);
    const staged = readdirSync(join(root, 'state', 'images'));
    const kernel = await images.get('xen-kernel');
    expect(staged.sort()).toEqual([kernel?.sha256, guest.sha256].sort());
    const conn = await Connection.open('test:///default');
    try {
      const dom = await conn.lookupByUUID(i.id);
      const xml = await dom.xml();
      expect(dom.name).toBe(`nova-${i.id}`);
      expect(xml).toContain(`<kernel>/dom0/view/images/${kernel?.sha256}</kernel>`);
      expect(xml).toContain(`<initrd>/dom0/view/images/${guest.sha256}</initrd>`);
      expect(xml).toContain('<cmdline>console=hvc0 quiet</cmdline>');
      expect(xml).toContain("<type arch='x86_64' machine='xenpv'>linux</type>"); // libvirt's name for PV
    } finally {
      await conn.close();
    }
    await d.destroy(i);
    expect(await d.getPowerState(i)).toBe('nostate');
  });

  it('refuses a name XML cannot carry (NUL) with reschedule: false naming the field, and leaves no domain', async () => {
    const d = driver('xen-nul');
    const i = instance({ name: 'evil\u0000name' });
    const err = await spawnOn(d, i).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Driver, details: { reschedule: false, retryable: false } });
    expect((err as Error).cause).toMatchObject({
      code: ErrorCode.XenXmlValue,
      details: { field: 'metadata.displayName', codePoint: 0 },
    });
    expect(await d.getPowerState(i)).toBe('nostate');
  });

  it('refuses an unknown vmMode and disk images with reschedule: false', async () => {
    const d = driver('xen-modes');
    const odd = await images.import(
      {
        id: 'odd-mode',
        name: 'odd',
        diskFormat: 'initramfs',
        properties: { kernelImageId: 'xen-kernel', vmMode: 'exotic' },
      },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    const disk = await images.import(
      { id: 'disk', name: 'disk', diskFormat: 'qcow2' },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    for (const image of [odd, disk]) {
      const i = instance({ imageId: image.id });
      const err = await spawnOn(d, i, image).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCode.Driver, details: { reschedule: false } });
      expect((err as Error).cause).toMatchObject({ code: ErrorCode.XenUnsupportedImage });
      expect(await d.getPowerState(i)).toBe('nostate');
    }
  });

  it('lists only the domains of its own hostId, with their projects', async () => {
    const a = driver('xen-list-a');
    const b = driver('xen-list-b');
    const ia = instance({ projectId: 'proj-a' });
    const ib = instance({ projectId: 'proj-b' });
    await spawnOn(a, ia);
    await spawnOn(b, ib);
    expect(await a.listInstances()).toEqual([
      { instanceId: ia.id, powerState: 'running', projectId: 'proj-a' },
    ]);
    expect((await b.listInstances()).map((g) => g.instanceId)).toEqual([ib.id]);
    await a.destroy(ia);
    await b.destroy(ib);
  });

  it('emits a power event from libvirt lifecycle events when the domain stops behind its back, and none for its own calls (pause, hard reboot, suspend, power off and on)', async () => {
    const d = driver('xen-events');
    const i = instance();
    await d.getHostReport(); // connects: lifecycle events flow from here on
    const seen: PowerStateEvent[] = [];
    const sub = d.events$.subscribe((e) => seen.push(e));
    await spawnOn(d, i);
    await d.pause(i);
    await d.unpause(i);
    await d.reboot(i, 'hard');
    await d.suspend(i);
    await d.resume(i);
    await d.powerOff(i, { timeoutMs: 1_000 });
    await d.powerOn(i);
    const stopped = firstValueFrom(
      d.events$.pipe(
        filter((e) => e.instanceId === i.id),
        timeout(10_000),
      ),
    );
    const other = await Connection.open('test:///default');
    try {
      const dom = await other.lookupByUUID(i.id);
      await dom.destroy();
    } finally {
      await other.close();
    }
    expect(await stopped).toMatchObject({ instanceId: i.id, powerState: 'shutdown' });
    expect(seen.map((e) => e.powerState)).toEqual(['shutdown']);
    sub.unsubscribe();
    await d.destroy(i);
  });
});
