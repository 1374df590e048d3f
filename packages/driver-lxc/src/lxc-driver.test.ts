import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image, Instance, LocalImageService, PowerStateEvent } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, readTags } from './container-config.js';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';
import { containerName, hostnameOf } from './names.js';

const HOST = 'engine-a';
const OTHER = 'engine-b = x # y'; // a host id with `=`, spaces and `#`: recorded percent-encoded

/** Every key the driver writes; a config holding any other key was injected into. */
const DRIVER_KEYS = new Set([
  'lxc.uts.name',
  'lxc.rootfs.path',
  'lxc.net.0.type',
  'lxc.autodev',
  'lxc.pty.max',
  'lxc.tty.max',
  'lxc.mount.auto',
  'lxc.mount.entry',
  'lxc.cap.drop',
  'lxc.cgroup.devices.deny',
  'lxc.cgroup.devices.allow',
  'lxc.seccomp.profile',
  'lxc.console.logfile',
  'lxc.console.size',
  'lxc.console.rotate',
  'lxc.signal.halt',
  'lxc.init.cmd',
  'lxc.environment',
  'lxc.cgroup.memory.limit_in_bytes',
  'lxc.cgroup.memory.memsw.limit_in_bytes',
  'lxc.cgroup.cpu.cfs_period_us',
  'lxc.cgroup.cpu.cfs_quota_us',
  'lxc.cgroup.pids.max',
]);

describe.skipIf(!available)('LxcDriver on real LXC', () => {
  const lxcPath = tempLxcPath();
  const driver = new LxcDriver({ hostId: HOST, lxcPath, stopTimeoutSeconds: 2, pollIntervalMs: 150 });
  const other = new LxcDriver({ hostId: OTHER, lxcPath, stopTimeoutSeconds: 2 });
  let images: LocalImageService;
  let image: Image;
  let imageDir: string;

  const request = (instance: Instance, img = image) => ({
    instance,
    flavor: instance.flavor,
    image: img,
    images,
    ports: [],
    volumes: [],
  });
  const spawn = async (over: Partial<Instance> = {}, d = driver): Promise<Instance> => {
    const instance = buildTestInstance({ imageId: image.id, hostId: d.hostId, ...over });
    await d.spawn(request(instance));
    return instance;
  };
  const sh = async (i: Instance, line: string): Promise<string> =>
    (await driver.tools.run('lxc-attach', containerName(i.id), ['--clear-env', '--', '/bin/sh', '-c', line]))
      .stdout;
  const configOf = (i: Instance) => readFile(join(lxcPath, containerName(i.id), 'config'), 'utf8');

  beforeAll(async () => {
    ({ images, image, dir: imageDir } = await busyboxImages());
  });
  afterAll(async () => {
    await driver.close();
    await other.close();
    await removeHostContainers(lxcPath, HOST);
    await removeHostContainers(lxcPath, OTHER);
    await rm(imageDir, { recursive: true, force: true });
  });

  it('reports this machine: lxc, its CPUs, memory and the disk of lxcPath, cgroup v1 and LXC 5 as traits', async () => {
    const report = await driver.getHostReport();
    expect(report.hypervisorType).toBe('lxc');
    expect(report.inventory.VCPU?.total).toBeGreaterThan(0);
    expect(report.inventory.MEMORY_MB?.total).toBeGreaterThan(0);
    expect(report.inventory.DISK_GB?.total).toBeGreaterThan(0);
    expect(report.traits).toEqual(
      expect.arrayContaining(['COMPUTE_CONTAINER', 'CUSTOM_CGROUP_V1', 'CUSTOM_LXC_5']),
    );
  });

  it('cannot be made to write a config key by a hostile instance name, project or metadata (newlines and `=` in values)', async () => {
    const inject = '\nlxc.mount.entry = / host none bind 0 0\nlxc.cap.drop =\nlxc.init.cmd = /bin/false';
    const projectId = `p=1${inject}\r\n# x`;
    const i = await spawn({
      name: `evil = name${inject}`,
      projectId,
      metadata: { [`k${inject}`]: `v = ${inject}`, 'lxc.rootfs.path': '/' },
    });
    expect(await driver.getPowerState(i)).toBe('running');
    const config = await configOf(i);
    const keys = parseConfig(config).map(([k]) => k);
    for (const k of keys) expect(DRIVER_KEYS.has(k), `unexpected key ${k}`).toBe(true);
    expect(config).not.toContain('/ host');
    expect(config).not.toContain('/bin/false');
    expect(keys.filter((k) => k === 'lxc.mount.entry')).toHaveLength(2);
    expect(keys.filter((k) => k === 'lxc.init.cmd')).toHaveLength(1);
    // the project goes in percent-encoded and comes back exactly
    expect(readTags(config)).toEqual({ instanceId: i.id, projectId, hostId: HOST });
    expect((await driver.listInstances()).find((g) => g.instanceId === i.id)).toEqual({
      instanceId: i.id,
      powerState: 'running',
      projectId,
    });
    // the host name is the sanitized display name, as Nova makes one
    expect((await sh(i, 'hostname')).trim()).toBe(hostnameOf(i.name, i.id));
    expect((await sh(i, 'hostname')).trim()).toMatch(/^[a-z0-9-]+$/);
    await driver.destroy(i);
  });

  it('keeps two hosts on one lxcpath apart: each lists, reads and destroys only its own containers', async () => {
    const mine = await spawn();
    const theirs = await spawn({}, other);
    expect((await driver.listInstances()).map((g) => g.instanceId)).toContain(mine.id);
    expect((await driver.listInstances()).map((g) => g.instanceId)).not.toContain(theirs.id);
    expect((await other.listInstances()).map((g) => g.instanceId)).toEqual([theirs.id]);
    expect(await driver.getPowerState(theirs)).toBe('nostate');
    await driver.destroy(theirs); // not its container: nothing happens
    expect(await other.getPowerState(theirs)).toBe('running');
    await expect(driver.pause(theirs)).rejects.toMatchObject({
      details: { driver: 'lxc', retryable: false },
    });
    await other.destroy(theirs);
    await driver.destroy(mine);
  });

  it('reads the console log: the boot line, and only the last lines when asked', async () => {
    const i = await spawn();
    const out = await driver.getConsoleOutput(i);
    expect(out).toContain(`nova-lfs: instance ${i.id} booted`);
    await sh(i, 'echo second line >/dev/console');
    expect(await driver.getConsoleOutput(i, { lines: 1 })).toBe('second line\n');
    await driver.destroy(i);
  });

  it('snapshots the rootfs into the image service with its sha256; the snapshot boots with what was written', async () => {
    const i = await spawn();
    await sh(i, 'echo from-the-guest >/root/marker');
    const snap = await driver.snapshot(i, { name: 'snap-1', images });
    expect(snap).toMatchObject({
      diskFormat: 'tar',
      properties: { hypervisorType: 'lxc', sourceInstance: i.id },
    });
    const local = await images.acquire(snap.id);
    expect(
      createHash('sha256')
        .update(await readFile(local.path))
        .digest('hex'),
    ).toBe(snap.sha256);
    expect(await driver.getPowerState(i)).toBe('running'); // thawed again after the freeze
    const child = buildTestInstance({ imageId: snap.id, hostId: HOST });
    await driver.spawn(request(child, snap));
    expect((await sh(child, 'cat /root/marker')).trim()).toBe('from-the-guest');
    await driver.destroy(child);
    await driver.destroy(i);
    await images.remove(snap.id);
  });

  it('rebuilds in place: same container and uuid, a fresh rootfs from the image, running again', async () => {
    const i = await spawn();
    await sh(i, 'echo old >/root/marker');
    await driver.rebuild(request(i));
    expect(await driver.getPowerState(i)).toBe('running');
    expect(await sh(i, 'test -e /root/marker && echo kept || echo gone')).toBe('gone\n');
    expect(readTags(await configOf(i))?.instanceId).toBe(i.id);
    const boots = (await driver.getConsoleOutput(i)).split('\n').filter((l) => l.includes('booted'));
    expect(boots).toHaveLength(2);
    await driver.destroy(i);
  });

  it('powers off gracefully (SIGTERM to init), on again; a soft reboot keeps it running; stopped or frozen it can be destroyed', async () => {
    const i = await spawn();
    const started = performance.now();
    await driver.powerOff(i, { timeoutMs: 5000 });
    expect(performance.now() - started).toBeLessThan(4000); // init's trap ended it, not the SIGKILL
    expect(await driver.getPowerState(i)).toBe('shutdown');
    await driver.powerOff(i); // already off: nothing to do
    await driver.powerOn(i);
    await driver.powerOn(i); // already on
    await driver.reboot(i, 'soft');
    expect(await driver.getPowerState(i)).toBe('running');
    await driver.pause(i);
    expect((await driver.listInstances()).find((g) => g.instanceId === i.id)?.powerState).toBe('paused');
    await driver.destroy(i);
    expect(await driver.getPowerState(i)).toBe('nostate');
  });

  it("emits power events it observes on its own (a kill from outside, a vanished container), not its own calls'", async () => {
    const i = await spawn();
    const events: PowerStateEvent[] = [];
    const sub = driver.events$.subscribe((e) => events.push(e));
    const until = async (pred: () => boolean, ms = 5000) => {
      const end = Date.now() + ms;
      while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    };
    await new Promise((r) => setTimeout(r, 400)); // baseline poll
    await driver.pause(i);
    await driver.unpause(i);
    await new Promise((r) => setTimeout(r, 400));
    expect(events.filter((e) => e.instanceId === i.id)).toEqual([]);
    // killed behind the driver's back
    await driver.tools.run('lxc-stop', containerName(i.id), ['-k']);
    await until(() => events.some((e) => e.instanceId === i.id));
    expect(events.find((e) => e.instanceId === i.id)).toMatchObject({
      instanceId: i.id,
      powerState: 'shutdown',
    });
    // removed behind its back
    await rm(join(lxcPath, containerName(i.id)), { recursive: true, force: true });
    await until(() => events.some((e) => e.powerState === 'nostate'));
    expect(events.at(-1)).toMatchObject({ instanceId: i.id, powerState: 'nostate' });
    sub.unsubscribe();
  });

  it('of two spawns of one instance one wins; the other fails and leaves the winner running, as does a later spawn', async () => {
    const i = buildTestInstance({ imageId: image.id, hostId: HOST });
    const results = await Promise.allSettled([driver.spawn(request(i)), driver.spawn(request(i))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ details: { driver: 'lxc', operation: 'spawn', retryable: false } });
    await expect(driver.spawn(request(i))).rejects.toMatchObject({ details: { operation: 'spawn' } });
    expect(await driver.getPowerState(i)).toBe('running');
    await driver.destroy(i);
  });

  it('refuses an instance id that is not a uuid (names come from uuids only) with reschedule: false', async () => {
    const i = buildTestInstance({ id: '../../etc', imageId: image.id, flavor: tinyTestFlavor });
    await expect(driver.spawn(request(i))).rejects.toMatchObject({
      details: { driver: 'lxc', reschedule: false, retryable: false },
    });
  });
});
