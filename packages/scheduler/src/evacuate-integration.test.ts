import { createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { schedulerFactory } from './create-scheduler.js';

describe('evacuate with the plugin scheduler', () => {
  it('keeps anti-affinity members apart and answers NoValidHost when no host is left', async () => {
    const drivers = Array.from({ length: 3 }, (_, i) => new FakeDriver({ hostname: `n${i}`, vcpus: 8 }));
    const compute = await createCompute({
      storage: 'memory',
      scheduler: schedulerFactory(),
      flavors: [{ id: 'small', vcpus: 2, ramMb: 2048 }],
      hosts: drivers.map((driver, i) => ({ id: `n${i}`, driver })),
    });
    await compute.images.register(
      { id: 'img', name: 'img', diskFormat: 'qcow2', sha256: 'e'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array([1]) },
    );
    const group = await compute.serverGroups.create({
      id: 'g',
      name: 'g',
      projectId: 'p',
      policy: 'anti-affinity',
    });
    const members = await compute.create({
      name: 'vm',
      projectId: 'p',
      userId: 'u',
      flavorId: 'small',
      imageId: 'img',
      count: 2,
      hints: { group: group.id },
    });
    const hosts = members.map((m) => m.hostId!);
    expect(new Set(hosts).size).toBe(2);
    const [down, other] = hosts as [string, string];
    const free = ['n0', 'n1', 'n2'].find((h) => !hosts.includes(h))!;
    await compute.hosts.setStatus(down, { up: false });
    const report = await compute.evacuate(down);
    expect(report.instances).toHaveLength(1);
    expect(report.instances[0]).toMatchObject({ result: 'evacuated', hostId: free });
    const moved = report.instances[0]!.instanceId;
    expect((await compute.get(moved)).hostId).toBe(free);

    await compute.hosts.setStatus(free, { up: false });
    const stuck = await compute.evacuate(free);
    expect(stuck.instances[0]).toMatchObject({ instanceId: moved, result: 'failed', hostId: free });
    expect(stuck.instances[0]!.fault?.code).toBe('NLFS_NO_VALID_HOST');
    expect((await compute.get(moved)).hostId).toBe(free);
    expect(other).not.toBe(free);
    await compute.close();
  });
});
