import { existsSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Flavor, type Image, type Instance, LocalImageService } from '@nova-lfs/core';
import type { LiveMigrationProgress, MigrationTarget } from '@nova-lfs/core/ports';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { Connection } from '@nova-lfs/libvirt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { testRoot, until } from './kvm-env.test-helper.js';
import { isLiveMigrationRefused, type KvmLiveMigrationRefusedError } from './live-migration-errors.js';
import {
  counts,
  firstUri,
  kernel,
  makeCounterInitramfs,
  secondUri,
  twoHosts,
} from './migration-env.test-helper.js';
import { checkDestinationHypervisor, parseCapabilities } from './migration-precheck.js';

const flavor: Flavor = { id: 'mig.small', name: 'mig.small', vcpus: 1, ramMb: 256, diskGb: 0 } as Flavor;

interface Host {
  readonly driver: KvmDriver;
}

/** A KVM host: its driver (the LiveMigratable port under test) on `uri`. */
function host(uri: string, hostId: string, stateDir: string): Host {
  return { driver: new KvmDriver({ uri, hostId, stateDir, pollIntervalMs: 60_000 }) };
}

const consoleOf = (h: Host, i: Instance) =>
  readFile(join(h.driver.instanceDir(i.id), 'console.log'), 'utf8').catch(() => '');
const lastCount = async (h: Host, i: Instance) => counts(await consoleOf(h, i)).at(-1) ?? -1;

/** Every counter printed so far is one more than the one before: the guest never restarted. */
function expectUnbroken(text: string): number[] {
  const c = counts(text);
  expect(c[0]).toBe(0);
  for (let k = 1; k < c.length; k++) expect(c[k]).toBe(c[k - 1]! + 1);
  return c;
}

describe.skipIf(!twoHosts)('KVM live migration between two real libvirtds (QEMU TCG)', () => {
  let root: string;
  let images: LocalImageService;
  let counter: Image;
  let dirty: Image;
  let a: Host;
  let b: Host;
  const guests: Instance[] = [];

  beforeAll(async () => {
    root = testRoot();
    images = new LocalImageService(join(root, 'images'));
    await makeCounterInitramfs(join(root, 'counter.gz'));
    await makeCounterInitramfs(join(root, 'dirty.gz'), { dirtyMiB: 24 });
    await images.import({ id: 'kernel', name: 'kernel', diskFormat: 'raw' }, { kind: 'file', path: kernel! });
    const props = { kernelImageId: 'kernel', kernelCmdline: 'console=ttyS0 quiet' };
    counter = await images.import(
      { id: 'counter', name: 'counter', diskFormat: 'initramfs', properties: props },
      { kind: 'file', path: join(root, 'counter.gz') },
    );
    dirty = await images.import(
      { id: 'dirty', name: 'dirty', diskFormat: 'initramfs', properties: props },
      { kind: 'file', path: join(root, 'dirty.gz') },
    );
    a = host(firstUri, 'mig-a', join(root, 'state'));
    b = host(secondUri, 'mig-b', join(root, 'state'));
  }, 120_000);

  afterAll(async () => {
    for (const g of guests) {
      await a?.driver.destroy(g).catch(() => undefined);
      await b?.driver.destroy(g).catch(() => undefined);
    }
    for (const h of [a, b]) await h?.driver.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  async function boot(image: Image, on: Host = a, size: Flavor = flavor): Promise<Instance> {
    const instance = buildTestInstance({ hostId: on.driver.hostId, flavor: size, imageId: image.id });
    guests.push(instance);
    await on.driver.spawn({ instance, flavor: size, image, images, ports: [], volumes: [] });
    await until(async () => (await lastCount(on, instance)) >= 3, 90_000, 'the guest to count');
    return instance;
  }

  async function move(i: Instance, from: Host, to: Host, o: Parameters<KvmDriver['liveMigrate']>[2] = {}) {
    const target = await to.driver.prepareLiveMigrationTarget(i);
    await from.driver.checkLiveMigration(i, target);
    return { target, result: from.driver.liveMigrate(i, target, o) };
  }

  it('a counting guest keeps counting across a live migration there and back', async () => {
    const g = await boot(counter);
    const progress: LiveMigrationProgress[] = [];
    const before = await lastCount(a, g);
    const there = await (await move(g, a, b, { onProgress: (p) => progress.push(p), maxDowntimeMs: 300 }))
      .result;

    expect(await b.driver.getPowerState(g)).toBe('running');
    expect(await a.driver.getPowerState(g)).toBe('nostate');
    expect((await b.driver.listInstances()).map((x) => x.instanceId)).toContain(g.id);
    expect(existsSync(a.driver.instanceDir(g.id))).toBe(false);
    // The destination's console file (the source's, hard-linked on this shared filesystem) goes on.
    await until(async () => (await lastCount(b, g)) >= before + 10, 30_000, 'the guest to count on host b');
    expectUnbroken(await consoleOf(b, g));
    expect(there.postCopy).toBe(false);
    expect(there.downtimeMs).toBeGreaterThan(0);
    expect(there.downtimeMs).toBeLessThan(2_000);
    expect(there.totalMs).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.at(-1)).toMatchObject({
      phase: 'precopy',
      dataRemainingBytes: 0,
      downtimeMs: there.downtimeMs,
    });
    const running = progress.filter((p) => p.dataTotalBytes !== undefined);
    expect(running.length).toBeGreaterThanOrEqual(1);
    // The first report may come before QEMU has sized the job (data_total 0).
    expect(Math.max(...running.map((p) => p.dataTotalBytes ?? 0))).toBeGreaterThanOrEqual(256 * 2 ** 20);
    console.log(
      `a -> b: ${there.totalMs} ms, downtime ${there.downtimeMs} ms, ${progress.length} progress reports`,
    );

    const mid = await lastCount(b, g);
    const back = await (await move(g, b, a)).result;
    expect(await a.driver.getPowerState(g)).toBe('running');
    expect(await b.driver.getPowerState(g)).toBe('nostate');
    expect(existsSync(b.driver.instanceDir(g.id))).toBe(false);
    await until(
      async () => (await lastCount(a, g)) >= mid + 10,
      30_000,
      'the guest to count on host a again',
    );
    expectUnbroken(await consoleOf(a, g));
    expect(back.downtimeMs).toBeGreaterThan(0);
    console.log(`b -> a: ${back.totalMs} ms, downtime ${back.downtimeMs} ms`);
    await a.driver.destroy(g);
  }, 240_000);

  it('an abort leaves the guest running on the source, and the destination rolls back', async () => {
    const g = await boot(counter);
    let seen: () => void = () => {};
    const running = new Promise<void>((r) => (seen = r));
    // 1 MiB/s: the ~90 MiB of non-zero pages take over a minute, so the abort lands mid-copy.
    const { target, result } = await move(g, a, b, {
      bandwidthMiBps: 1,
      onProgress: (p) => {
        if ((p.dataProcessedBytes ?? 0) > 0) seen();
      },
    });
    const outcome = result.then(
      () => 'migrated',
      (e: unknown) => e,
    );
    await running;
    await a.driver.abortLiveMigration(g);
    const err = await outcome;
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('NLFS_DRIVER_ERROR');
    expect(String((err as Error).message)).toMatch(/cancel|abort/i);
    expect(await a.driver.getPowerState(g)).toBe('running');
    expect(await b.driver.getPowerState(g)).toBe('nostate');
    const at = await lastCount(a, g);
    await until(async () => (await lastCount(a, g)) >= at + 5, 30_000, 'the guest to count on the source');
    expectUnbroken(await consoleOf(a, g));
    expect(existsSync(target.params.instanceDir!)).toBe(true);
    await b.driver.rollbackLiveMigrationTarget(g);
    expect(existsSync(target.params.instanceDir!)).toBe(false);
    await b.driver.rollbackLiveMigrationTarget(g); // idempotent
    // No migration runs any more: abort and force-complete are refused with a reason.
    const none = await a.driver.abortLiveMigration(g).catch((e: unknown) => e);
    expect(isLiveMigrationRefused(none, 'no-migration')).toBe(true);
    await a.driver.destroy(g);
  }, 240_000);

  it('a guest that keeps dirtying memory over a throttled link does not converge and completes through force-complete (post-copy)', async () => {
    const g = await boot(dirty, a, { ...flavor, id: 'mig.dirty', ramMb: 160 });
    const progress: LiveMigrationProgress[] = [];
    // A 4 MiB/s link and a 1 ms downtime limit: pre-copy switches over only once less than ~4 KiB
    // is left, which never happens while the guest's copy loop keeps writing memory. QEMU reports
    // the dirty rate once its first pass (~160 MiB at 4 MiB/s) is through.
    const bandwidthMiBps = 4;
    let dirtier: () => void = () => {};
    const outpaced = new Promise<void>((r) => (dirtier = r));
    const { result } = await move(g, a, b, {
      bandwidthMiBps,
      maxDowntimeMs: 1,
      allowPostCopy: true,
      onProgress: (p) => {
        progress.push(p);
        if ((p.dirtyRateBytesPerSecond ?? 0) > 0 && (p.dataRemainingBytes ?? 0) > 0) dirtier();
      },
    });
    const outcome = result.then(
      (r) => r,
      (e: unknown) => e,
    );
    const ended = outcome.then((r) => {
      throw new Error(`the migration ended before it was outpaced: ${String(r)}`);
    });
    await Promise.race([outpaced, ended]);
    const beforeSwitch = progress.at(-1)!;
    expect(beforeSwitch.dataRemainingBytes).toBeGreaterThan(0);
    expect(beforeSwitch.dirtyRateBytesPerSecond).toBeGreaterThan(0);
    await a.driver.forceCompleteLiveMigration(g, { kind: 'postcopy' });
    const r = await outcome;
    if (r instanceof Error) throw r;
    const done = r as Awaited<typeof result>;
    expect(done.postCopy).toBe(true);
    expect(await b.driver.getPowerState(g)).toBe('running');
    expect(await a.driver.getPowerState(g)).toBe('nostate');
    const at = await lastCount(b, g);
    await until(async () => (await lastCount(b, g)) >= at + 5, 30_000, 'the guest to count on host b');
    expectUnbroken(await consoleOf(b, g));
    console.log(
      `post-copy: ${done.totalMs} ms, downtime ${done.downtimeMs} ms, dirty rate ${((beforeSwitch.dirtyRateBytesPerSecond ?? 0) / 2 ** 20).toFixed(1)} MiB/s over a ${bandwidthMiBps} MiB/s link, ${((beforeSwitch.dataRemainingBytes ?? 0) / 2 ** 20).toFixed(1)} MiB left at the switch`,
    );
    await b.driver.destroy(g);
  }, 300_000);

  it('force-complete by post-copy is refused for a migration started without allowPostCopy; a raised downtime is accepted', async () => {
    const g = await boot(counter);
    let seen: () => void = () => {};
    const running = new Promise<void>((r) => (seen = r));
    const { result } = await move(g, a, b, {
      bandwidthMiBps: 1,
      onProgress: (p) => {
        if ((p.dataProcessedBytes ?? 0) > 0) seen();
      },
    });
    const outcome = result.then(
      (r) => r,
      (e: unknown) => e,
    );
    await running;
    const refused = await a.driver
      .forceCompleteLiveMigration(g, { kind: 'postcopy' })
      .catch((e: unknown) => e);
    expect(isLiveMigrationRefused(refused, 'postcopy-not-allowed')).toBe(true);
    await a.driver.forceCompleteLiveMigration(g, { kind: 'downtime', downtimeMs: 5_000 });
    await a.driver.abortLiveMigration(g);
    expect(await outcome).toBeInstanceOf(Error);
    expect(await a.driver.getPowerState(g)).toBe('running');
    await b.driver.rollbackLiveMigrationTarget(g);
    await a.driver.destroy(g);
  }, 240_000);

  it('checkLiveMigration refuses early with a reason: guest missing or not running, bad or unreachable destination, same host, CPU incompatible', async () => {
    const reasonOf = (e: unknown) => (e as KvmLiveMigrationRefusedError).details?.reason;
    const nowhere = buildTestInstance({ hostId: 'mig-a', flavor });
    const target = await b.driver.prepareLiveMigrationTarget(nowhere);
    expect(reasonOf(await a.driver.checkLiveMigration(nowhere, target).catch((e) => e))).toBe(
      'guest-missing',
    );

    const g = await boot(counter);
    await a.driver.powerOff(g, { timeoutMs: 0 });
    const off = await a.driver.checkLiveMigration(g, target).catch((e: unknown) => e);
    expect(reasonOf(off)).toBe('not-running');
    expect((off as Error).message).toMatch(/shut off/);
    expect((off as { code?: string }).code).toBe('NLFS_DRIVER_ERROR');
    await a.driver.powerOn(g);

    const bad: MigrationTarget = {
      ...target,
      params: { ...target.params, uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' },
    };
    const unreachable = await a.driver.checkLiveMigration(g, bad).catch((e: unknown) => e);
    expect(reasonOf(unreachable)).toBe('destination-unreachable');
    expect((unreachable as Error).message).toContain('/nonexistent/libvirt-sock');

    const { migrateUri: _omit, ...partial } = target.params;
    const invalid = await a.driver
      .checkLiveMigration(g, { ...target, params: partial })
      .catch((e: unknown) => e);
    expect(reasonOf(invalid)).toBe('invalid-target');
    expect((invalid as KvmLiveMigrationRefusedError).details.field).toBe('params.migrateUri');
    const docker = await a.driver
      .checkLiveMigration(g, { ...target, driverKind: 'docker' })
      .catch((e: unknown) => e);
    expect(reasonOf(docker)).toBe('driver-kind');

    // A target naming the source's own libvirtd (another host id on the same daemon).
    const self: MigrationTarget = {
      ...target,
      hostId: 'mig-a2',
      params: { ...target.params, uri: firstUri, hostId: 'mig-a2' },
    };
    expect(reasonOf(await a.driver.checkLiveMigration(g, self).catch((e) => e))).toBe('same-host');
    // Preparing a host that already has a domain of the instance (the source itself) is refused.
    const onA = await a.driver.prepareLiveMigrationTarget(g).catch((e: unknown) => e);
    expect(reasonOf(onA)).toBe('exists-on-destination');
    await b.driver.rollbackLiveMigrationTarget(nowhere);

    // The CPU check: libvirt on the destination judges a guest CPU it cannot provide under TCG.
    const [src, dst] = await Promise.all([Connection.open(firstUri), Connection.open(secondUri)]);
    try {
      const caps = parseCapabilities(await src.capabilities());
      const base = { virtType: 'qemu', arch: 'x86_64', machine: undefined, diskFiles: [], bootFiles: [] };
      const skylake =
        "<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server</model><feature policy='require' name='avx512f'/></cpu>";
      const cpu = await checkDestinationHypervisor(dst, caps, { ...base, cpuXml: skylake });
      expect(cpu?.reason).toBe('cpu-incompatible');
      expect(cpu?.message).toContain('avx512f');
      const qemu64 = "<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>";
      expect(await checkDestinationHypervisor(dst, caps, { ...base, cpuXml: qemu64 })).toBeUndefined();
      const arch = await checkDestinationHypervisor(dst, caps, {
        ...base,
        arch: 'sparc64',
        cpuXml: undefined,
      });
      expect(arch?.reason).toBe('arch-unsupported');
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }
    await a.driver.destroy(g);
  }, 240_000);
});
