import { createCompute } from '@nova-lfs/core';
import type { ClaimStore } from '@nova-lfs/core/ports';
import { FakeDriver } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { schedulerFactory } from './create-scheduler.js';
import type { PluginScheduler } from './plugin-scheduler.js';

async function cloud(hosts: number, driverOptions: ConstructorParameters<typeof FakeDriver>[0] = {}) {
  const drivers = Array.from(
    { length: hosts },
    (_, i) => new FakeDriver({ hostname: `n${i}`, vcpus: 8, ramMb: 16_384, ...driverOptions }),
  );
  let scheduler: PluginScheduler | undefined;
  let claims: ClaimStore | undefined;
  const factory = schedulerFactory();
  const compute = await createCompute({
    storage: 'memory',
    scheduler: (deps) => {
      claims = deps.claims;
      scheduler = factory(deps);
      return scheduler;
    },
    flavors: [
      { id: 'small', vcpus: 2, ramMb: 2048 },
      { id: 'ssd', vcpus: 2, ramMb: 2048, extraSpecs: { 'trait:CUSTOM_SSD': 'required' } },
    ],
    hosts: drivers.map((driver, i) => ({
      id: `n${i}`,
      driver,
      availabilityZone: i % 2 ? 'az-b' : 'az-a',
      traits: i === 0 ? ['CUSTOM_SSD'] : [],
    })),
  });
  await compute.images.register(
    { id: 'img', name: 'img', diskFormat: 'qcow2', sha256: 'e'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array([1]) },
  );
  const req = { name: 'vm', projectId: 'p', userId: 'u', flavorId: 'small', imageId: 'img' };
  return { compute, drivers, scheduler: scheduler!, claims: claims!, req };
}

describe('scheduler inside the engine', () => {
  it('is the default scheduler of createCompute and persists its claims in the engine claim store', async () => {
    const defaults = await createCompute({
      storage: 'memory',
      flavors: [{ id: 'f', vcpus: 1, ramMb: 128 }],
      hosts: [{ id: 'h', driver: new FakeDriver() }],
    });
    expect(defaults.scheduler.constructor.name).toBe('PluginScheduler');
    await defaults.close();
    let claims: ClaimStore | undefined;
    const compute = await createCompute({
      storage: 'memory',
      scheduler: (deps) => {
        claims = deps.claims;
        return schedulerFactory()(deps);
      },
      flavors: [{ id: 'f', vcpus: 1, ramMb: 128 }],
      hosts: [{ id: 'h', driver: new FakeDriver() }],
    });
    await compute.images.register(
      { id: 'i', name: 'i', diskFormat: 'raw', sha256: 'f'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array() },
    );
    const [vm] = await compute.create({
      name: 'a',
      projectId: 'p',
      userId: 'u',
      flavorId: 'f',
      imageId: 'i',
    });
    expect(await claims!.list()).toEqual([expect.objectContaining({ instanceId: vm!.id, hostId: 'h' })]);
  });

  it('spreads an anti-affinity group over hosts and refuses a member more than the hosts, explaining why', async () => {
    const { compute, req } = await cloud(3);
    await compute.serverGroups.create({ id: 'web', name: 'web', projectId: 'p', policy: 'anti-affinity' });
    const vms = await compute.create({ ...req, count: 3, hints: { group: 'web' } });
    expect(new Set(vms.map((v) => v.hostId)).size).toBe(3);
    const [extra] = await compute.create({ ...req, hints: { group: 'web' } });
    expect(extra!.vmState).toBe('error');
    expect(extra!.fault!.details).toMatchObject({
      hostsConsidered: 3,
      rejections: { ServerGroup: { 'anti-affinity: a group member is on this host': 3 } },
    });
  });

  it("reschedules failed builds onto alternates, releasing the failed hosts' claims", async () => {
    const { compute, drivers, req, scheduler } = await cloud(3);
    drivers[0]!.failNext('spawn', { times: 1 });
    drivers[1]!.failNext('spawn', { times: 1 });
    for (let i = 0; i < 3; i++) {
      const [vm] = await compute.create(req);
      expect(vm!.vmState).toBe('active');
    }
    expect(drivers.reduce((s, d) => s + d.guestCount, 0)).toBe(3);
    for (let i = 0; i < 3; i++) {
      const st = scheduler.hostState(`n${i}`)!;
      expect(st.used.VCPU ?? 0).toBe(2 * drivers[i]!.guestCount);
      expect(st.inFlightCount).toBe(0);
    }
  });

  it('routes by zone and trait, and releases claims on delete', async () => {
    const { compute, req, scheduler, claims } = await cloud(4);
    const [a] = await compute.create({ ...req, availabilityZone: 'az-b' });
    expect(['n1', 'n3']).toContain(a!.hostId);
    const [b] = await compute.create({ ...req, flavorId: 'ssd' });
    expect(b!.hostId).toBe('n0');
    await compute.delete(a!.id);
    await compute.delete(b!.id);
    for (let i = 0; i < 4; i++) expect(scheduler.hostState(`n${i}`)!.used.VCPU ?? 0).toBe(0);
    expect(await claims.list()).toEqual([]);
  });
});
