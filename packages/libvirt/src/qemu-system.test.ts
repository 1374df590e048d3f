import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Connection,
  DeviceModifyFlags,
  type Domain,
  type DomainDeviceEvent,
  DomainEventStoppedDetail,
  type DomainLifecycleEvent,
  DomainState,
  DomainXmlFlags,
  isLibvirtError,
  JobType,
  LibvirtError,
  MigrateFlags,
  UndefineFlags,
  VirErrorNumber,
} from './index.js';
import { libvirtEnv, uniqueName } from './libvirt-env.test-helper.js';
import {
  diskXml,
  findGuestKernel,
  GUEST_MARKER,
  guestDir,
  guestXml,
  makeInitramfs,
} from './qemu-guest.test-helper.js';

const daemon = await libvirtEnv('qemu');
const kernel = await findGuestKernel();
if (daemon && kernel === undefined) {
  const reason = 'no /boot/vmlinuz-*-cloud-amd64; install it with: apt-get install linux-image-cloud-amd64';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping libvirt qemu guest tests: ${reason}`);
}
const available = daemon && kernel !== undefined;

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!available)('qemu:///system (libvirtd, QEMU TCG)', () => {
  let conn: Connection;
  let dir: string;
  let initrd: string;
  const leftovers: Domain[] = [];
  beforeAll(async () => {
    conn = await Connection.open('qemu:///system');
    dir = await guestDir();
    initrd = await makeInitramfs(dir);
  });
  afterAll(async () => {
    for (const d of leftovers) {
      await d.destroy().catch(() => {});
      await d.undefine(UndefineFlags.ManagedSave | UndefineFlags.SnapshotsMetadata).catch(() => {});
    }
    await conn?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('connects and reports the daemon, the hypervisor and the domains', async () => {
    expect(await conn.type()).toBe('QEMU');
    expect((await conn.libVersion()).major).toBeGreaterThanOrEqual(9);
    expect((await conn.hypervisorVersion()).major).toBeGreaterThanOrEqual(7);
    expect(await conn.capabilities()).toContain('<arch>x86_64</arch>');
    expect((await conn.nodeInfo()).cpus).toBeGreaterThan(0);
    const all = await conn.listAllDomains();
    expect(Array.isArray(all)).toBe(true);
    await Promise.all(all.map((d) => d.free()));
  });

  it('decodes an error raised on a worker thread by libvirtd (VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU)', async () => {
    const name = uniqueName('missing');
    const err = await conn.lookupByName(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).details).toMatchObject({
      operation: 'virDomainLookupByName',
      code: VirErrorNumber.NoDomain,
      codeName: 'VIR_ERR_NO_DOMAIN',
      domainName: 'VIR_FROM_QEMU',
      level: 2,
      attribution: 'certain',
    });
    expect((err as LibvirtError).details.message).toContain(name);
    // several at once: every one is NO_DOMAIN and, where certain, names its own domain
    const names = Array.from({ length: 8 }, (_, i) => `${name}-${i}`);
    const errs = (await Promise.all(
      names.map((n) => conn.lookupByName(n).catch((e: unknown) => e)),
    )) as LibvirtError[];
    errs.forEach((e, i) => {
      expect(isLibvirtError(e, VirErrorNumber.NoDomain)).toBe(true);
      if (e.details.attribution === 'certain') expect(e.details.message).toContain(names[i]);
    });
  });

  it('defines, starts, hot-plugs, stops and undefines a tiny guest, with lifecycle events for each step', async () => {
    const name = uniqueName('nlfs-libvirt');
    const serialLog = join(dir, `${name}.log`);
    const events: DomainLifecycleEvent[] = [];
    const sub = await conn.subscribeLifecycle((e) => {
      if (e.domainName === name) events.push(e);
    });
    const disk = join(dir, 'extra.img');
    await writeFile(disk, Buffer.alloc(4 * 2 ** 20));

    const d = await conn.defineXML(guestXml({ name, kernel: kernel!, initrd, serialLog }));
    leftovers.push(d);
    expect(await d.isPersistent()).toBe(true);

    // device attach/detach on the persistent definition
    await d.attachDevice(diskXml(disk, 'vdc'), DeviceModifyFlags.Config);
    expect(await d.xml(DomainXmlFlags.Inactive)).toContain("dev='vdc'");
    await d.detachDevice(diskXml(disk, 'vdc'), DeviceModifyFlags.Config);
    expect(await d.xml(DomainXmlFlags.Inactive)).not.toContain("dev='vdc'");

    await d.start();
    await until(() => events.some((e) => e.eventName === 'started'), 10_000, 'the started event');
    expect((await d.info()).state).toBe(DomainState.Running);
    await until(
      async () => (await readFile(serialLog, 'utf8').catch(() => '')).includes(GUEST_MARKER),
      60_000,
      'the guest to boot',
    );

    // jobs: none running; aborting none is refused
    expect((await d.jobInfo()).type).toBe(JobType.None);
    expect((await d.jobStats()).type).toBe(JobType.None);
    const noJob = await d.abortJob().catch((e: unknown) => e);
    expect(isLibvirtError(noJob, VirErrorNumber.OperationInvalid)).toBe(true);

    // live hot-plug of a disk into the running guest; the guest's release comes as a device event
    // naming the disk's alias (only for this domain: the subscription is scoped to it)
    const deviceEvents: DomainDeviceEvent[] = [];
    const devices = await conn.subscribeDeviceEvents((e) => deviceEvents.push(e), { domain: d });
    await d.attachDevice(diskXml(disk), DeviceModifyFlags.Live);
    const live = await d.xml();
    expect(live).toContain("dev='vdb'");
    const alias = live.match(/<target dev='vdb'[\s\S]*?<alias name='([^']+)'/)?.[1];
    expect(alias).toMatch(/^virtio-disk\d+$/);
    await d.detachDevice(diskXml(disk), DeviceModifyFlags.Live);
    await until(() => deviceEvents.length > 0, 15_000, 'the device-removed event');
    expect(deviceEvents).toEqual([
      expect.objectContaining({ kind: 'removed', alias, domainName: name, domainUuid: d.uuid }),
    ]);
    expect(await d.xml()).not.toContain("dev='vdb'");
    await devices.close();
    await devices.close();

    // migration parameters reach libvirtd: migrating to this same host is refused by it
    const mig = await d
      .migrateToUri('qemu:///system', {
        flags: MigrateFlags.Live | MigrateFlags.PeerToPeer,
        migrateUri: 'tcp://127.0.0.1:49152',
        listenAddress: '127.0.0.1',
        bandwidthMiBs: 64,
      })
      .catch((e: unknown) => e);
    expect(mig).toBeInstanceOf(LibvirtError);
    expect((mig as LibvirtError).details.operation).toBe('virDomainMigrateToURI3');
    expect((await d.info()).state).toBe(DomainState.Running);

    await d.destroy();
    await until(() => events.some((e) => e.eventName === 'stopped'), 10_000, 'the stopped event');
    await d.undefine();
    await until(() => events.some((e) => e.eventName === 'undefined'), 10_000, 'the undefined event');
    await sub.close();
    // QEMU also reports `resumed` when the vCPUs start and `shutdown` (finished) on destroy
    const main = events.map((e) => e.eventName).filter((n) => n !== 'resumed' && n !== 'shutdown');
    expect(main).toEqual(['defined', 'started', 'stopped', 'undefined']);
    expect(events.find((e) => e.eventName === 'stopped')?.detail).toBe(DomainEventStoppedDetail.Destroyed);
    await d.free();
    leftovers.pop();
  });
});
