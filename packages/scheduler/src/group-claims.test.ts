import { type ComputeEngine, createCompute, type Instance } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { createScheduler, schedulerFactory } from './create-scheduler.js';
import { claimGroupOf, GroupClaims } from './group-claims.js';
import { flavor, GatedDriver, host, request } from './test-fixtures.test-helper.js';

/** An engine over fake hosts of decreasing size (spread places on the first with room). */
async function cloud(drivers: ReadonlyArray<[string, FakeDriver]>): Promise<{
  compute: ComputeEngine;
  req: Parameters<ComputeEngine['create']>[0];
}> {
  const compute = await createCompute({
    storage: 'memory',
    scheduler: schedulerFactory(),
    flavors: [{ id: 'small', vcpus: 1, ramMb: 1024 }],
    quota: { defaults: { instances: -1, cores: -1, ramMb: -1 } },
    hosts: drivers.map(([id, driver]) => ({ id, driver })),
  });
  await compute.images.register(
    { id: 'img', name: 'img', diskFormat: 'raw', sha256: 'b'.repeat(64) },
    { kind: 'bytes', bytes: new Uint8Array() },
  );
  await compute.serverGroups.create({ id: 'web', name: 'web', projectId: 'p', policy: 'anti-affinity' });
  return {
    compute,
    req: {
      name: 'vm',
      projectId: 'p',
      userId: 'u',
      flavorId: 'small',
      imageId: 'img',
      hints: { group: 'web' },
    },
  };
}

const sized = (id: string, vcpus: number) => new FakeDriver({ hostname: id, vcpus, ramMb: vcpus * 4096 });

function activeHosts(instances: readonly Instance[]): string[] {
  return instances.filter((i) => i.vmState === 'active').map((i) => i.hostId!);
}

describe('hard anti-affinity on reschedule (issue 11, defect 14)', () => {
  it("refuses an alternate that holds the request's own sibling", async () => {
    // the first instance goes to `big` (most free), its sibling to `small`; `big` fails the spawn
    // and the first instance's only alternate is `small`, where its sibling is
    const big = sized('big', 32);
    big.failNext('spawn', { times: 1 });
    const { compute, req } = await cloud([
      ['big', big],
      ['small', sized('small', 8)],
    ]);
    const vms = await compute.create({ ...req, count: 2 });
    const active = activeHosts(vms);
    expect(active).toEqual(['small']);
    const failed = vms.find((v) => v.vmState === 'error')!;
    expect(failed.fault!.details).toMatchObject({ hostsTried: ['big'] });
    await compute.close();
  });

  it('refuses an alternate taken by a member placed after the request was scheduled', async () => {
    // R1 is placed on `a` and its spawn waits; R2 joins the group meanwhile and goes to `b` (the
    // most free host without a member); then R1's spawn fails and its first alternate is `b`
    const a = new GatedDriver({ hostname: 'a', vcpus: 32, ramMb: 131_072 });
    const { compute, req } = await cloud([
      ['a', a],
      ['b', sized('b', 16)],
      ['c', sized('c', 8)],
    ]);
    const r1 = compute.create(req);
    await a.spawnsStarted(1);
    const [r2] = await compute.create(req);
    expect(r2!.hostId).toBe('b');
    a.fail();
    const [first] = await r1;
    expect(first!.vmState).toBe('active');
    expect(first!.hostId).toBe('c');
    await compute.close();
  });
});

describe('hard group policies at claim time, in the scheduler', () => {
  it("checks an alternate against the group's member claims, not only the request's memberHostIds", async () => {
    const s = createScheduler();
    for (const id of ['h0', 'h1', 'h2']) s.upsertHost(host(id));
    const group = { id: 'g', policy: 'anti-affinity' as const, memberHostIds: [] };
    const req = request(flavor(1, 256), 2, { group });
    const [first, sibling] = await s.select(req);
    // the first build failed: its claim goes, and it is rescheduled with the request as selected
    await s.release(first!.claim);
    const retry = { ...req, instanceIds: [first!.instanceId] };
    expect(await s.claim(sibling!.hostId, retry)).toBeUndefined();
    // a member placed by another request since the selection holds one of the two other hosts
    const [later] = await s.select(request(flavor(1, 256), 1, { group }));
    expect(later!.hostId).not.toBe(sibling!.hostId);
    const free = ['h0', 'h1', 'h2'].find((h) => h !== sibling!.hostId && h !== later!.hostId)!;
    expect(await s.claim(later!.hostId, retry)).toBeUndefined();
    expect((await s.claim(free, retry))!.hostId).toBe(free);
  });

  it('keeps affinity on the host of the member claims', async () => {
    const s = createScheduler();
    for (const id of ['h0', 'h1']) s.upsertHost(host(id));
    const req = request(flavor(1, 256), 2, { group: { id: 'g', policy: 'affinity', memberHostIds: [] } });
    const [first, sibling] = await s.select(req);
    expect(first!.hostId).toBe(sibling!.hostId);
    await s.release(first!.claim);
    const retry = { ...req, instanceIds: [first!.instanceId] };
    const elsewhere = sibling!.hostId === 'h0' ? 'h1' : 'h0';
    expect(await s.claim(elsewhere, retry)).toBeUndefined();
    expect(await s.claim(sibling!.hostId, retry)).toBeDefined();
  });
});

describe('GroupClaims', () => {
  it('counts member claims per host, leaving out the instances being placed', async () => {
    const s = createScheduler();
    for (const id of ['h0', 'h1']) s.upsertHost(host(id));
    const group = { id: 'g', policy: 'soft-affinity' as const, memberHostIds: [] };
    const placed = await s.select(request(flavor(1, 256), 3, { group }));
    for (const p of placed) expect(claimGroupOf(p.claim)).toEqual({ id: 'g', policy: 'soft-affinity' });
    const index = new GroupClaims();
    for (const p of placed) index.add(p.claim);
    const all = index.hostCounts('g', []);
    expect([...all!.values()].reduce((x, y) => x + y, 0)).toBe(3);
    const without = index.hostCounts('g', [placed[0]!.instanceId]);
    expect([...without!.values()].reduce((x, y) => x + y, 0)).toBe(2);
    for (const p of placed) index.remove(p.claim);
    expect(index.hostCounts('g', [])).toBeUndefined();
  });
});
