import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../errors.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { LoggedEvent, StoreWrite, UnitOfWork } from '../ports/unit-of-work.js';
import { CountingQuotaEngine } from '../quota/counting-quota-engine.js';
import { memoryUnitStores } from '../store/memory-unit-of-work.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';
import type { InstanceEvent } from './events.js';

describe('create', () => {
  it('builds an instance to active on a host with a claim, and records the action', async () => {
    const { compute, request } = await createFakeCloud();
    const [vm] = await compute.create(request({ metadata: { role: 'web' }, requestId: 'req-1' }));
    expect(vm).toMatchObject({ vmState: 'active', taskState: null, powerState: 'running', hostId: 'host-0' });
    expect(vm!.launchedAt).not.toBeNull();
    expect(vm!.metadata).toEqual({ role: 'web' });
    const claims = await internalsOf(compute).claims.list({ instanceId: vm!.id });
    expect(claims).toHaveLength(1);
    expect(claims[0]!.resources).toMatchObject({ VCPU: 1, MEMORY_MB: 2048, DISK_GB: 10 });
    const actions = await compute.listActions(vm!.id);
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({
      action: 'create',
      result: 'success',
      userId: 'u1',
      requestId: 'req-1',
    });
  });

  it('emits the build as events in order', async () => {
    const { compute, request } = await createFakeCloud();
    const { instances, done } = await compute.submit(request());
    const events = firstValueFrom(compute.watch(instances[0]!.id).pipe(toArray()));
    await done;
    await compute.delete(instances[0]!.id);
    const seen = (await events).map((e: InstanceEvent) =>
      e.type === 'instance.state' ? `${e.vmState}/${e.taskState ?? '-'}/${e.powerState}` : e.type,
    );
    expect(seen).toEqual([
      'instance.scheduled',
      'building/spawning/nostate',
      'active/-/running',
      'instance.action',
      'instance.action',
      'active/deleting/running',
      'deleted/-/nostate',
      'instance.action',
      'instance.deleted',
    ]);
  });

  it('reschedules onto an alternate host after a spawn failure, cleaning up the first host', async () => {
    const cloud = await createFakeCloud({ hosts: 3 });
    const { compute, drivers } = cloud;
    drivers[0]!.failNext('spawn', { times: 1, message: 'disk full' });
    const events: InstanceEvent[] = [];
    compute.events$.subscribe((e) => events.push(e));
    const [vm] = await compute.create(cloud.request());
    expect(vm).toMatchObject({ vmState: 'active', hostId: 'host-1' });
    expect(drivers[0]!.calls.destroy).toBe(1);
    expect(drivers[0]!.guestCount).toBe(0);
    expect(cloud.scheduler.usage('host-0').VCPU).toBe(0);
    expect(await internalsOf(compute).claims.list({ instanceId: vm!.id })).toEqual([
      expect.objectContaining({ hostId: 'host-1' }),
    ]);
    const resched = events.find((e) => e.type === 'instance.rescheduled');
    expect(resched).toMatchObject({ fromHostId: 'host-0', toHostId: 'host-1' });
    expect(resched && 'cause' in resched && resched.cause.message).toMatch(/disk full/);
  });

  it('ends in ERROR with a fault naming the cause after the bounded attempts, holding no claim', async () => {
    const cloud = await createFakeCloud({
      hosts: 4,
      driver: { failures: { spawn: { message: 'qemu exploded' } } },
    });
    const [vm] = await cloud.compute.create(cloud.request());
    expect(vm).toMatchObject({ vmState: 'error', taskState: null, hostId: null });
    expect(vm!.fault).toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    expect(vm!.fault!.message).toMatch(/3 attempt\(s\).*qemu exploded/);
    expect(vm!.fault!.details).toMatchObject({ attempts: 3, hostsTried: ['host-0', 'host-1', 'host-2'] });
    expect(cloud.drivers[3]!.calls.spawn ?? 0).toBe(0);
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(0);
    for (const d of cloud.drivers) expect(d.guestCount).toBe(0);
    const actions = await cloud.compute.listActions(vm!.id);
    expect(actions[0]).toMatchObject({ action: 'create', result: 'error' });
    // quota stays held by the ERROR instance until it is deleted (as in Nova)
    expect((await internalsOf(cloud.compute).quota.usage('p1')).inUse.instances).toBe(1);
    await cloud.compute.delete(vm!.id);
    expect((await internalsOf(cloud.compute).quota.usage('p1')).inUse.instances).toBe(0);
  });

  it('puts every instance of a request in ERROR with NoValidHost reasons when nothing fits', async () => {
    const cloud = await createFakeCloud({ hosts: 2, driver: { vcpus: 4 } });
    const vms = await cloud.compute.create(cloud.request({ flavorId: 'm1.large', count: 2 }));
    expect(vms.map((v) => v.vmState)).toEqual(['error', 'error']);
    expect(vms[0]!.fault).toMatchObject({
      code: 'NLFS_NO_VALID_HOST',
      details: { hostsConsidered: 2, rejections: { FirstFit: { 'insufficient resources': 2 } } },
    });
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(0);
  });

  it('places a multi-instance request all-or-nothing', async () => {
    const cloud = await createFakeCloud({ hosts: 1, driver: { vcpus: 16 } });
    const ok = await cloud.compute.create(cloud.request({ flavorId: 'm1.large', count: 2 }));
    expect(ok.every((v) => v.vmState === 'active')).toBe(true);
    const refused = await cloud.compute.create(cloud.request({ count: 2 }));
    expect(refused.every((v) => v.vmState === 'error')).toBe(true);
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(2);
  });

  it('spreads a hard anti-affinity group over distinct hosts, even across concurrent requests', async () => {
    const cloud = await createFakeCloud({ hosts: 3 });
    await internalsOf(cloud.compute).groups.add({
      id: 'g1',
      name: 'g1',
      projectId: 'p1',
      policy: 'anti-affinity',
      members: [],
    });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => cloud.compute.create(cloud.request({ hints: { group: 'g1' } }))),
    );
    const vms = results.flat();
    const active = vms.filter((v) => v.vmState === 'active');
    expect(active).toHaveLength(3);
    expect(new Set(active.map((v) => v.hostId)).size).toBe(3);
    expect(vms.filter((v) => v.vmState === 'error')[0]!.fault!.code).toBe('NLFS_NO_VALID_HOST');
  });

  it('consumes quota in the admission unit and releases it in the removal unit (memory stores)', async () => {
    const quota = new CountingQuotaEngine({ instances: 3, cores: 400, ramMb: 1_000_000 });
    const { unit, ...stores } = memoryUnitStores(quota);
    const seen: StoreWrite['kind'][][] = [];
    const spy: UnitOfWork = {
      quota: unit.quota,
      commit: (writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]> => {
        seen.push(writes.map((w) => w.kind));
        return unit.commit(writes);
      },
    };
    const { compute, request } = await createFakeCloud({ core: { quota, stores: { ...stores, unit: spy } } });
    const reserve = quota.reserve.bind(quota);
    let reserved = 0;
    quota.reserve = async (p, d) => {
      reserved++;
      return reserve(p, d);
    };
    const [vm] = await compute.create(request());
    expect(vm!.vmState).toBe('active');
    expect(reserved).toBe(0);
    const admission = seen.find((k) => k.includes('instance.insert'))!;
    expect(admission[0]).toBe('quota.consume');
    expect((await quota.usage('p1')).inUse.instances).toBe(1);
    await compute.delete(vm!.id);
    expect(seen.find((k) => k.includes('instance.remove'))).toContain('quota.release');
    expect((await quota.usage('p1')).inUse.instances).toBe(0);
  });

  it('admits exactly what fits when concurrent creates consume quota in their units', async () => {
    const quota = new CountingQuotaEngine({ instances: 5, cores: 400, ramMb: 1_000_000 });
    const { compute, request } = await createFakeCloud({ core: { quota } });
    expect(internalsOf(compute).unit.quota).toBe(quota);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => compute.create(request())));
    const admitted = results.filter((r) => r.status === 'fulfilled');
    expect(admitted).toHaveLength(5);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'NLFS_QUOTA_EXCEEDED' });
    }
    const usage = await quota.usage('p1');
    expect(usage.inUse.instances).toBe(5);
    expect(usage.reserved.instances).toBe(0);
    // a unit that fails after its consumption holds nothing (the duplicate id fails the unit)
    const [vm] = (admitted[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof compute.create>>>).value;
    await compute.delete(vm!.id);
    const deps = internalsOf(compute);
    await expect(
      deps.unit.commit([
        { kind: 'quota.consume', projectId: 'p1', deltas: { instances: 1, cores: 1, ramMb: 1 } },
        { kind: 'instance.insert', instance: (await compute.list())[0]! },
      ]),
    ).rejects.toMatchObject({ code: 'NLFS_DUPLICATE' });
    expect((await quota.usage('p1')).inUse.instances).toBe(4);
  });

  it('takes back records, actions and group membership when the quota commit fails after the admission unit', async () => {
    const quota = new CountingQuotaEngine({ instances: 100, cores: 400, ramMb: 1_000_000 });
    let quotaDown = true;
    // a quota engine the memory unit of work does not apply: reserved before the unit, committed after
    const outside: QuotaEngine = {
      reserve: (p, d) => quota.reserve(p, d),
      commit: async (r) => {
        if (quotaDown) throw new Error('quota store unavailable');
        await quota.commit(r);
      },
      rollback: (r) => quota.rollback(r),
      release: (p, d) => quota.release(p, d),
      usage: (p) => quota.usage(p),
      setLimits: (p, l) => quota.setLimits(p, l),
      resync: (u) => quota.resync(u),
    };
    const { compute, request } = await createFakeCloud({ core: { quota: outside } });
    expect(internalsOf(compute).unit.quota).toBeUndefined();
    const group = await compute.serverGroups.create({
      id: 'g',
      name: 'g',
      projectId: 'p1',
      policy: 'anti-affinity',
    });
    await expect(compute.create(request({ count: 2, hints: { group: group.id } }))).rejects.toThrow(
      'quota store unavailable',
    );
    const usage = await quota.usage('p1');
    expect(usage.inUse).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
    expect(usage.reserved).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
    expect(await compute.list()).toEqual([]);
    expect((await compute.serverGroups.get('g'))!.members).toEqual([]);
    expect(await internalsOf(compute).actions.listPending()).toEqual([]);
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    quotaDown = false;
    const [vm] = await compute.create(request());
    expect(vm!.vmState).toBe('active');
    expect((await quota.usage('p1')).inUse.instances).toBe(1);
  });

  it('writes nothing of an admission whose unit fails (the group vanished), and holds no quota', async () => {
    const { compute, request } = await createFakeCloud();
    await compute.serverGroups.create({ id: 'g', name: 'g', projectId: 'p1', policy: 'affinity' });
    const deps = internalsOf(compute);
    // the group goes between the admission's lookup and its unit of work
    const get = deps.groups.get.bind(deps.groups);
    deps.groups.get = async (id) => {
      const g = await get(id);
      await deps.groups.remove(id);
      return g;
    };
    const err = await compute.create(request({ count: 3, hints: { group: 'g' } })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NLFS_NOT_FOUND', details: { kind: 'serverGroup' } });
    expect(await compute.list()).toEqual([]);
    expect(await deps.actions.listPending()).toEqual([]);
    expect((await deps.quota.usage('p1')).reserved).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
    expect((await deps.quota.usage('p1')).inUse).toMatchObject({ instances: 0, cores: 0, ramMb: 0 });
  });

  it('rejects bad input with typed errors naming the field, creating nothing', async () => {
    const cloud = await createFakeCloud();
    const { compute, request } = cloud;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: '' }, 'name'],
      [{ name: 'a\u0000b' }, 'name'],
      [{ count: 0 }, 'count'],
      [{ projectId: 'bad project' }, 'projectId'],
      [{ metadata: { k: 'x'.repeat(300) } }, 'metadata.k'],
      [{ hints: { sameHost: ['not-a-uuid'] } }, 'hints.sameHost.0'],
      [{ flavorId: undefined }, 'flavorId'],
    ];
    for (const [override, field] of cases) {
      const err = await compute.create(request(override)).catch((e) => e);
      expect(err, field).toBeInstanceOf(ValidationError);
      expect(err.code).toBe('NLFS_VALIDATION');
      expect((err as ValidationError).fields).toContain(field);
    }
    const unknown: Array<[Record<string, unknown>, string, string]> = [
      [{ flavorId: 'm9.huge' }, 'flavor', 'flavorId'],
      [{ imageId: 'nope' }, 'image', 'imageId'],
      [{ hints: { group: 'nope' } }, 'serverGroup', 'hints.group'],
      [{ hints: { sameHost: ['6f1c1a8e-5a4b-4c3d-9e2f-1a2b3c4d5e6f'] } }, 'instance', 'hints.sameHost'],
    ];
    for (const [override, kind, field] of unknown) {
      const err = await compute.create(request(override)).catch((e) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.details).toMatchObject({ kind, field });
    }
    expect(await compute.list()).toHaveLength(0);
    expect((await internalsOf(compute).quota.usage('p1')).inUse.instances).toBe(0);
    expect((await internalsOf(compute).quota.usage('p1')).reserved.instances).toBe(0);
  });

  it('accepts hostile display names and metadata verbatim', async () => {
    const cloud = await createFakeCloud();
    const name = `</name><x a="1">'; rm -rf / $(id) & "`;
    const [vm] = await cloud.compute.create(cloud.request({ name, metadata: { '<k>': '"v" & $HOME' } }));
    expect(vm).toMatchObject({ name, vmState: 'active', metadata: { '<k>': '"v" & $HOME' } });
  });
});
