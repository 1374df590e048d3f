import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ComputeEngine, createCompute, type Instance, LocalImageService } from '@nova-lfs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { testRoot, until } from './kvm-env.test-helper.js';
import { counts, firstUri, kernel, secondUri, twoHosts } from './migration-env.test-helper.js';
import { importCounterImages } from './testing/index.js';

describe.skipIf(!twoHosts)("the engine's live migration over two real KVM hosts", () => {
  let root: string;
  let compute: ComputeEngine;
  const drivers: Record<string, KvmDriver> = {};

  beforeAll(async () => {
    root = testRoot();
    const images = new LocalImageService(join(root, 'images'));
    await importCounterImages(images, root, kernel!);
    drivers['eng-a'] = new KvmDriver({ uri: firstUri, hostId: 'eng-a', stateDir: join(root, 'state') });
    drivers['eng-b'] = new KvmDriver({ uri: secondUri, hostId: 'eng-b', stateDir: join(root, 'state') });
    compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'mig', vcpus: 1, ramMb: 256 }],
      hosts: Object.entries(drivers).map(([id, driver]) => ({ id, driver })),
      // The completion policy: a migration still running after 4 s is forced (post-copy).
      engine: { liveMigrationCompletionTimeoutMs: 4_000 },
    });
  }, 120_000);

  afterAll(async () => {
    if (compute) {
      for (const i of await compute.list()) await compute.delete(i.id).catch(() => undefined);
      await compute.close();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  const consoleOf = (i: Instance) =>
    readFile(join(drivers[i.hostId!]!.instanceDir(i.id), 'console.log'), 'utf8').catch(() => '');
  const last = async (i: Instance) => counts(await consoleOf(i)).at(-1) ?? -1;

  it('moves a counting guest to the scheduler-picked host and back; a throttled one is forced to complete by the policy', async () => {
    const [vm] = await compute.create({
      name: 'mig',
      projectId: 'p',
      userId: 'u',
      flavorId: 'mig',
      imageId: 'counter',
    });
    expect(vm!.vmState).toBe('active');
    await until(async () => (await last(vm!)) >= 3, 90_000, 'the guest to count');
    const from = vm!.hostId!;

    const moved = await compute.liveMigrate(vm!.id);
    expect(moved.hostId).not.toBe(from);
    expect(moved.vmState).toBe('active');
    expect(moved.taskState).toBeNull();
    expect(await drivers[moved.hostId!]!.getPowerState(moved)).toBe('running');
    expect(await drivers[from]!.getPowerState(moved)).toBe('nostate');
    const before = await last(moved);
    await until(
      async () => (await last(moved)) >= before + 5,
      30_000,
      'the guest to count on the destination',
    );
    const c = counts(await consoleOf(moved));
    for (let k = 1; k < c.length; k++) expect(c[k]).toBe(c[k - 1]! + 1);
    const [record] = await compute.migrations.list({ instanceId: vm!.id });
    expect(record).toMatchObject({
      kind: 'live',
      status: 'completed',
      sourceHostId: from,
      destHostId: moved.hostId,
    });
    expect(record!.progress?.downtimeMs).toBeGreaterThan(0);

    // 1 MiB/s would take over a minute: the engine's policy switches to post-copy after 4 s.
    const back = await compute.liveMigrate(vm!.id, { host: from, bandwidthMiBps: 1 });
    expect(back.hostId).toBe(from);
    expect(await drivers[from]!.getPowerState(back)).toBe('running');
    const records = await compute.migrations.list({ instanceId: vm!.id });
    const forced = records.find((r) => r.destHostId === from);
    expect(forced).toMatchObject({ status: 'completed' });
    expect(forced!.progress?.phase).toBe('postcopy');
    const at = await last(back);
    await until(async () => (await last(back)) >= at + 5, 30_000, 'the guest to count back on the source');
    await compute.delete(vm!.id);
  }, 300_000);
});
