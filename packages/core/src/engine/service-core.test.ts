import { filter, firstValueFrom, lastValueFrom, type Observable, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createCompute } from '../compose/create-compute.js';
import { CountingQuotaEngine } from '../quota/counting-quota-engine.js';
import { MemoryClaimStore } from '../store/memory-claim-store.js';
import { MemoryFlavorStore } from '../store/memory-flavor-store.js';
import { MemoryHostStore } from '../store/memory-host-store.js';
import { MemoryLeaseStore } from '../store/memory-lease-store.js';
import { memoryUnitStores } from '../store/memory-unit-of-work.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { FakeDriver } from '../testing/fake-driver.js';
import { FirstFitScheduler } from '../testing/first-fit-scheduler.js';
import { internalsOf } from '../testing/internals.js';
import type { InstanceEvent } from './events.js';

/** Memory stores shared by several engines, as a shared database would be (not exclusive). */
function sharedStores() {
  return {
    ...memoryUnitStores(),
    hosts: new MemoryHostStore(),
    claims: new MemoryClaimStore(),
    flavors: new MemoryFlavorStore(),
    leases: new MemoryLeaseStore(),
    exclusive: false,
  };
}

/** Resolves when some instance's spawn has begun. */
function spawningIn(events$: Observable<InstanceEvent>): Promise<InstanceEvent> {
  return firstValueFrom(
    events$.pipe(filter((e) => e.type === 'instance.state' && e.taskState === 'spawning')),
  );
}

const image = {
  id: 'cirros',
  name: 'cirros',
  diskFormat: 'qcow2' as const,
  sha256: 'a'.repeat(64),
  sizeBytes: 1,
};
const request = { name: 'vm', projectId: 'p1', userId: 'u1', flavorId: 'm1.small', imageId: 'cirros' };

async function engineOn(stores: ReturnType<typeof sharedStores>, hostId: string, driver: FakeDriver) {
  const quota = new CountingQuotaEngine({ instances: 100, cores: 400, ramMb: 1_000_000 });
  const compute = await createCompute({
    storage: 'memory',
    stores,
    quota,
    scheduler: ({ claims }) => new FirstFitScheduler(claims),
    flavors: [{ id: 'm1.small', vcpus: 1, ramMb: 2048 }],
    hosts: [{ id: hostId, driver }],
    engine: { reconcileIntervalMs: 0 },
  });
  if (!(await compute.images.get('cirros'))) {
    await compute.images.register(image, { kind: 'bytes', bytes: new Uint8Array([1]) });
  }
  return compute;
}

describe('engine as a service core', () => {
  it('a second engine on shared stores leaves the first engine’s in-flight build alone (defect 1)', async () => {
    const stores = sharedStores();
    const driverA = new FakeDriver({ hostname: 'a' });
    const a = await engineOn(stores, 'host-a', driverA);
    driverA.hangNext('spawn', 'before');
    const spawning = spawningIn(a.events$);
    const { instances, done } = await a.submit(request);
    const id = instances[0]!.id;
    await spawning;
    // engine B starts with a host of its own and reconciles at start-up
    const b = await engineOn(stores, 'host-b', new FakeDriver({ hostname: 'b' }));
    const seen = await b.get(id);
    expect(seen.vmState).toBe('building');
    expect(seen.fault).toBeNull();
    // A's build is still A's: deleting it through A ends it, nothing left behind
    await a.delete(id);
    const [final] = await done;
    expect(final!.vmState).toBe('deleted');
    expect(await stores.claims.list()).toEqual([]);
    expect(await stores.actions.listPending()).toEqual([]);
    await b.close();
    await a.close();
  });

  it('keeps the claim of an ERROR instance whose guest survived a failed delete (defect 3)', async () => {
    const cloud = await createFakeCloud({ hosts: 1, driver: { vcpus: 2, ramMb: 4096 } });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request({ flavorId: 'm1.small' }));
    drivers[0]!.failNext('destroy', { times: 1, message: 'hypervisor busy' });
    await expect(compute.delete(vm!.id)).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    expect((await compute.get(vm!.id)).vmState).toBe('error');
    const report = await compute.reconcile();
    expect(report.releasedClaims).toEqual([]);
    expect(await internalsOf(compute).claims.list({ instanceId: vm!.id })).toHaveLength(1);
    // the host holds one more m1.small, not two: the failed instance still counts
    const [second] = await compute.create(cloud.request());
    const [third] = await compute.create(cloud.request());
    expect(second!.vmState).toBe('active');
    expect(third!.vmState).toBe('error');
    expect(third!.fault!.code).toBe('NLFS_NO_VALID_HOST');
    await compute.close();
  });

  it('refuses a mistyped host status and adds no phantom host (defect 7)', async () => {
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    const bad = await compute.setHostStatus('host-0', { enabled: 'false' } as never).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 'NLFS_VALIDATION' });
    expect((bad as { fields: string[] }).fields).toEqual(['enabled']);
    const extra = await compute
      .setHostStatus('host-0', { enabled: true, id: 'ghost' } as never)
      .catch((e: unknown) => e);
    expect((extra as { fields: string[] }).fields).toEqual(['id']);
    expect((await compute.hosts.list()).map((h) => h.id)).toEqual(['host-0']);
    const disabled = await compute.setHostStatus('host-0', { enabled: false, disabledReason: 'maintenance' });
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'maintenance' });
    const [vm] = await compute.create(req());
    expect(vm!.fault!.code).toBe('NLFS_NO_VALID_HOST');
    await compute.setHostStatus('host-0', { enabled: true });
    const [ok] = await compute.create(req());
    expect(ok!.vmState).toBe('active');
    expect((await compute.hosts.get('host-0'))!.disabledReason).toBeNull();
    await compute.close();
  });

  it('watch() of an unknown or deleted instance completes; watches are indexed and dropped (defect 10)', async () => {
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    expect(
      await lastValueFrom(compute.watch('01234567-89ab-7def-8123-456789abcdef').pipe(toArray())),
    ).toEqual([]);
    const subs = Array.from({ length: 20_000 }, (_, i) =>
      compute.watch(`00000000-0000-7000-8000-${String(i).padStart(12, '0')}`).subscribe(),
    );
    const [vm] = await compute.create(req());
    const events = lastValueFrom(compute.watch(vm!.id).pipe(toArray()));
    await compute.delete(vm!.id);
    const seen = await events;
    expect(seen.every((e) => e.instanceId === vm!.id)).toBe(true);
    expect(seen.at(-1)!.type).toBe('instance.deleted');
    expect(await lastValueFrom(compute.watch(vm!.id).pipe(toArray()))).toEqual([]);
    for (const s of subs) s.unsubscribe();
    expect(internalsOf(compute).openWatches).toBe(0);
    await compute.close();
  });

  it('watch() misses no event that happens while the store looks the instance up', async () => {
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    const [vm] = await compute.create(req());
    const deps = internalsOf(compute);
    const get = deps.instances.get.bind(deps.instances);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    // the watch's lookup is answered only after a whole reboot happened
    deps.instances.get = async (id: string) => {
      if (calls++ === 0) await held;
      return get(id);
    };
    const seen = lastValueFrom(compute.watch(vm!.id).pipe(toArray()));
    await compute.reboot(vm!.id, 'hard');
    release();
    await compute.delete(vm!.id);
    const types = (await seen).map((e) =>
      e.type === 'instance.state' ? `${e.vmState}/${e.taskState}` : e.type,
    );
    expect(types.slice(0, 2)).toEqual(['instance.action', 'active/rebooting_hard']);
    expect(types.at(-1)).toBe('instance.deleted');
    await compute.close();
  });

  it('two processes seeding the same flavors at once: the one that loses the insert starts anyway', async () => {
    const stores = sharedStores();
    const get = stores.flavors.get.bind(stores.flavors);
    // another process adds the flavor between this one's lookup and its insert
    stores.flavors.get = async (id: string) => {
      const found = await get(id);
      if (!found)
        await stores.flavors.add({
          id,
          name: id,
          vcpus: 1,
          ramMb: 2048,
          diskGb: 0,
          resources: {},
          extraSpecs: {},
        });
      return found;
    };
    const compute = await engineOn(stores, 'host-a', new FakeDriver({ hostname: 'a' }));
    expect((await compute.flavors.list()).map((f) => f.id)).toEqual(['m1.small']);
    await compute.close();
  });

  it('refuses bad composition and work after close() with typed errors (defect 11)', async () => {
    await expect(createCompute(undefined as never)).rejects.toMatchObject({ code: 'NLFS_CONFIGURATION' });
    await expect(
      createCompute({ storage: 'memory', engine: { timeouts: { spawn: Number.NaN } } as never }),
    ).rejects.toMatchObject({ code: 'NLFS_CONFIGURATION', details: { setting: 'engine.timeouts.spawn' } });
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    const [vm] = await compute.create(req());
    await compute.close();
    await expect(compute.create(req())).rejects.toMatchObject({ code: 'NLFS_ENGINE_CLOSED' });
    await expect(compute.reboot(vm!.id, 'hard')).rejects.toMatchObject({ code: 'NLFS_ENGINE_CLOSED' });
    await expect(compute.delete(vm!.id)).rejects.toMatchObject({ code: 'NLFS_ENGINE_CLOSED' });
    await compute.close(); // idempotent
  });

  it('refuses a reboot kind other than soft or hard instead of rebooting hard (defect 12)', async () => {
    const { compute, request: req, drivers } = await createFakeCloud({ hosts: 1 });
    const [vm] = await compute.create(req());
    for (const kind of ['SOFT', 'graceful', '']) {
      const e = await compute.reboot(vm!.id, kind as never).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'NLFS_VALIDATION' });
      expect((e as { fields: string[] }).fields).toEqual(['kind']);
    }
    expect(drivers[0]!.calls.reboot ?? 0).toBe(0);
    expect((await compute.get(vm!.id)).taskState).toBeNull();
    await compute.close();
  });

  it('done of an instance deleted mid-build resolves as deleted; the create action ends (defect 13)', async () => {
    const { compute, request: req, drivers } = await createFakeCloud({ hosts: 1 });
    drivers[0]!.hangNext('spawn', 'before');
    const spawning = spawningIn(compute.events$);
    const { instances, done } = await compute.submit(req());
    const id = instances[0]!.id;
    await spawning;
    await compute.delete(id);
    const [final] = await done;
    expect(final!.vmState).toBe('deleted');
    const actions = await compute.listActions(id);
    expect(actions.find((a) => a.action === 'create')!.result).toBe('error');
    expect(await internalsOf(compute).actions.listPending()).toEqual([]);
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    await compute.close();
  });

  it('a hung spawn ends at its deadline: cleaned up, rescheduled, then ERROR naming the timeout (defect 13)', async () => {
    const {
      compute,
      request: req,
      drivers,
    } = await createFakeCloud({
      hosts: 2,
      core: { engine: { timeouts: { spawn: 50 } as never, maxBuildAttempts: 2 } },
    });
    drivers[0]!.hangNext('spawn', 'after');
    drivers[1]!.hangNext('spawn', 'after');
    const [vm] = await compute.create(req());
    expect(vm!.vmState).toBe('error');
    expect(vm!.fault!.code).toBe('NLFS_DEADLINE_EXCEEDED');
    expect(vm!.fault!.details).toMatchObject({ attempts: 2, timeoutMs: 50 });
    // the guests the hung calls left were destroyed, the claims released, the action closed
    expect(await drivers[0]!.listInstances()).toEqual([]);
    expect(await drivers[1]!.listInstances()).toEqual([]);
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    expect((await compute.listActions(vm!.id))[0]).toMatchObject({ action: 'create', result: 'error' });
    await compute.close();
  });

  it('a failed build whose guest cannot be removed ends in ERROR on its host, claim held; delete removes both', async () => {
    const {
      compute,
      request: req,
      drivers,
    } = await createFakeCloud({
      hosts: 2,
      core: { engine: { timeouts: { spawn: 50 } as never } },
    });
    drivers[0]!.hangNext('spawn', 'after'); // the guest exists, the call never returns
    drivers[1]!.hangNext('spawn', 'after');
    drivers[0]!.failNext('destroy', { times: 1, message: 'hypervisor busy' });
    drivers[1]!.failNext('destroy', { times: 1, message: 'hypervisor busy' });
    const [vm] = await compute.create(req());
    expect(vm!.vmState).toBe('error');
    expect(vm!.hostId).not.toBeNull();
    expect(vm!.fault!.details).toMatchObject({ guestLeft: true });
    const host = drivers[Number(vm!.hostId!.slice(-1))]!;
    expect((await host.listInstances()).map((g) => g.instanceId)).toEqual([vm!.id]);
    expect(await internalsOf(compute).claims.list({ instanceId: vm!.id })).toHaveLength(1);
    await compute.delete(vm!.id);
    expect(await host.listInstances()).toEqual([]);
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    await compute.close();
  });

  it('a build failure no host can fix does not reschedule (BuildAbort vs Rescheduled)', async () => {
    const { compute, request: req, drivers } = await createFakeCloud({ hosts: 2 });
    drivers[0]!.failNext('spawn', { times: 1, reschedule: false, message: 'image format not supported' });
    drivers[1]!.failNext('spawn', { times: 1, reschedule: false, message: 'image format not supported' });
    const [vm] = await compute.create(req());
    expect(vm!.vmState).toBe('error');
    expect(vm!.fault!.details).toMatchObject({ attempts: 1 });
    expect((drivers[0]!.calls.spawn ?? 0) + (drivers[1]!.calls.spawn ?? 0)).toBe(1);
    await compute.close();
  });

  it('hard anti-affinity holds on reschedule: an alternate never lands next to a sibling (defect 14)', async () => {
    const { compute, request: req, drivers } = await createFakeCloud({ hosts: 3 });
    await compute.serverGroups.create({ id: 'g', name: 'g', projectId: 'p1', policy: 'anti-affinity' });
    // every spawn on host-0 fails: whichever sibling lands there must move to the one free host
    drivers[0]!.failNext('spawn', { message: 'host-0 broken' });
    const vms = await compute.create(req({ count: 2, hints: { group: 'g' } }));
    const active = vms.filter((v) => v.vmState === 'active');
    expect(new Set(active.map((v) => v.hostId)).size).toBe(active.length);
    expect(active.every((v) => v.hostId !== 'host-0')).toBe(true);
    await compute.close();
  });

  it('create is idempotent on requestId: a retry returns the same instances and creates nothing', async () => {
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    const first = await compute.create(req({ count: 2, requestId: 'req-1' }));
    const again = await compute.create(req({ count: 2, requestId: 'req-1' }));
    expect(again.map((v) => v.id)).toEqual(first.map((v) => v.id));
    expect(await compute.list()).toHaveLength(2);
    expect((await compute.quotas.get('p1')).inUse.instances).toBe(2);
    // concurrent retries: one admission, the same ids for all
    const racing = await Promise.all([1, 2, 3].map(() => compute.create(req({ requestId: 'req-2' }))));
    expect(new Set(racing.map((r) => r[0]!.id)).size).toBe(1);
    expect(await compute.list()).toHaveLength(3);
    // another project's same request id is another request
    const other = await compute.create(req({ projectId: 'p2', requestId: 'req-1' }));
    expect(other[0]!.id).not.toBe(first[0]!.id);
    await compute.close();
  });

  it('events({ since }) replays the durable log from a cursor, then goes live without gap or duplicate', async () => {
    const { compute, request: req } = await createFakeCloud({ hosts: 1 });
    const live: number[] = [];
    const sub = compute.events().subscribe((l) => live.push(l.seq));
    const [a] = await compute.create(req());
    const cursor = live.at(-1)!;
    await compute.delete(a!.id);
    const [b] = await compute.create(req());
    const replayed: Array<{ seq: number; event: InstanceEvent }> = [];
    const stream = compute.events({ since: cursor }).subscribe((l) => replayed.push(l));
    await compute.delete(b!.id);
    sub.unsubscribe();
    stream.unsubscribe();
    expect(replayed.map((l) => l.seq)).toEqual(live.filter((s) => s > cursor));
    expect(replayed.map((l) => l.seq)).toEqual([...replayed.map((l) => l.seq)].sort((x, y) => x - y));
    expect(replayed.at(-1)!.event).toMatchObject({ type: 'instance.deleted', instanceId: b!.id });
    // filtered by project: another project's instance does not show
    const mine: string[] = [];
    const p2 = compute.events({ since: 0, projectId: 'p2' }).subscribe((l) => mine.push(l.event.instanceId));
    const [c] = await compute.create(req({ projectId: 'p2' }));
    await compute.create(req());
    p2.unsubscribe();
    expect(new Set(mine)).toEqual(new Set([c!.id]));
    await compute.close();
  });

  it('the periodic reconciler heals while the engine runs (no restart): a guest that vanished', async () => {
    const {
      compute,
      request: req,
      drivers,
    } = await createFakeCloud({
      hosts: 1,
      core: { engine: { reconcileIntervalMs: 20 } },
    });
    await compute.create(req());
    const orphan = '0190aaaa-0000-7000-8000-000000000001';
    const found = firstValueFrom(compute.reconciled$.pipe(filter((r) => r.orphans.length > 0)));
    drivers[0]!.addOrphan(orphan);
    const report = await found;
    expect(report.orphans).toEqual([{ instanceId: orphan, hostId: 'host-0', reaped: false }]);
    await compute.close();
  });
});
