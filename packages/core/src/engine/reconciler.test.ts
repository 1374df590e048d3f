import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCompute } from '../compose/create-compute.js';
import type { CoreStores } from '../compose/register-core.js';
import { DeadlineExceededError, ErrorCode } from '../errors.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { MemoryActionStore } from '../store/memory-action-store.js';
import { MemoryClaimStore } from '../store/memory-claim-store.js';
import { MemoryFlavorStore } from '../store/memory-flavor-store.js';
import { MemoryHostStore } from '../store/memory-host-store.js';
import { MemoryInstanceStore } from '../store/memory-instance-store.js';
import { MemoryServerGroupStore } from '../store/memory-server-group-store.js';
import { FakeDriver } from '../testing/fake-driver.js';
import { FirstFitScheduler } from '../testing/first-fit-scheduler.js';
import { internalsOf } from '../testing/internals.js';
import { MemoryNetwork, MemoryVolumes } from '../testing/memory-adapters.js';
import type { EngineOptions } from './engine-options.js';
import type { InstanceEvent } from './events.js';

/** Durable parts that survive a "crash": stores and the fake hosts' state files. */
function durableWorld(
  adapters: { volumes?: VolumeAdapter; network?: NetworkAdapter } = {},
  engine?: Partial<EngineOptions>,
) {
  const dir = mkdtempSync(join(tmpdir(), 'nlfs-reconcile-'));
  const stores: CoreStores = {
    instances: new MemoryInstanceStore(),
    hosts: new MemoryHostStore(),
    claims: new MemoryClaimStore(),
    actions: new MemoryActionStore(),
    flavors: new MemoryFlavorStore(),
    groups: new MemoryServerGroupStore(),
  };
  const boot = async (events?: InstanceEvent[]) => {
    const drivers = [0, 1].map((i) => new FakeDriver({ statePath: join(dir, `host-${i}.json`), vcpus: 8 }));
    const compute = await createCompute({
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      stores,
      flavors: [{ id: 'm1.small', vcpus: 1, ramMb: 1024 }],
      hosts: drivers.map((driver, i) => ({ id: `host-${i}`, driver })),
      reconcile: false,
      ...adapters,
      ...(engine ? { engine } : {}),
    });
    if (events) compute.events$.subscribe((e) => events.push(e));
    await compute.images.register(
      { id: 'cirros', name: 'cirros', diskFormat: 'qcow2', sha256: 'c'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array([3]) },
    );
    return { compute, drivers };
  };
  return { stores, boot };
}

const until = async (check: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('condition not reached');
};

describe('start-up reconciliation after a simulated crash', () => {
  it('resolves every interrupted task against the hosts, releases leaks, resyncs quota and reports orphans', async () => {
    const world = durableWorld();
    const a = await world.boot();
    const req = { name: 'vm', projectId: 'p1', userId: 'u1', flavorId: 'm1.small', imageId: 'cirros' };

    // settled instances
    const [stopping, deleting, crashedWhileDown, rebootingHard] = await a.compute.create({
      ...req,
      count: 4,
    });
    // the process "dies" in the middle of each of these operations
    a.drivers[0]!.hangNext('spawn', 'after'); // guest created, store never updated
    const spawnedButUnrecorded = (await a.compute.submit(req)).instances[0]!;
    await until(async () => a.drivers[0]!.hasGuest(spawnedButUnrecorded.id));
    a.drivers[0]!.hangNext('spawn', 'before'); // crash before the hypervisor acted
    const neverSpawned = (await a.compute.submit(req)).instances[0]!;
    await until(async () => (await a.compute.get(neverSpawned.id)).taskState === 'spawning');
    a.drivers[0]!.hangNext('powerOff', 'after');
    void a.compute.powerOff(stopping!.id);
    await until(async () => (await a.compute.get(stopping!.id)).taskState === 'powering_off');
    a.drivers[0]!.hangNext('destroy', 'after');
    void a.compute.delete(deleting!.id);
    await until(async () => !a.drivers[0]!.hasGuest(deleting!.id));
    a.drivers[0]!.hangNext('reboot', 'before');
    void a.compute.reboot(rebootingHard!.id, 'hard');
    await until(async () => (await a.compute.get(rebootingHard!.id)).taskState === 'rebooting_hard');
    // while the engine is down: a guest dies, an unknown guest appears, a claim leaks
    a.drivers[0]!.crash(crashedWhileDown!.id);
    a.drivers[1]!.addOrphan('11111111-2222-4333-8444-555555555555', 'p9');
    await world.stores.claims!.add({
      id: 'leaked',
      instanceId: '99999999-2222-4333-8444-555555555555',
      hostId: 'host-1',
      resources: { VCPU: 4 },
      createdAt: 0,
    });

    // a new process over the same durable state
    const events: InstanceEvent[] = [];
    const b = await world.boot(events);
    const report = await b.compute.open();

    const byId = async (id: string) => internalsOf(b.compute).instances.get(id);
    expect(await byId(spawnedButUnrecorded.id)).toMatchObject({
      vmState: 'active',
      taskState: null,
      powerState: 'running',
    });
    const failed = await byId(neverSpawned.id);
    expect(failed).toMatchObject({ vmState: 'error', taskState: null, hostId: null });
    expect(failed!.fault!.message).toMatch(/interrupted/);
    expect(await byId(stopping!.id)).toMatchObject({
      vmState: 'stopped',
      taskState: null,
      powerState: 'shutdown',
    });
    expect(await byId(deleting!.id)).toBeUndefined();
    expect(await byId(crashedWhileDown!.id)).toMatchObject({ vmState: 'stopped', powerState: 'shutdown' });
    expect(await byId(rebootingHard!.id)).toMatchObject({ vmState: 'active', taskState: null });

    expect(await internalsOf(b.compute).instances.list({ withTask: true })).toHaveLength(0);
    const live = await b.compute.list();
    const claims = await internalsOf(b.compute).claims.list();
    expect(claims.map((c) => c.instanceId).sort()).toEqual(
      live
        .filter((i) => i.vmState !== 'error')
        .map((i) => i.id)
        .sort(),
    );
    expect(report.releasedClaims).toContain('leaked');
    expect(report.orphans).toEqual([
      { instanceId: '11111111-2222-4333-8444-555555555555', hostId: 'host-1', reaped: false },
    ]);
    expect(events.some((e) => e.type === 'instance.orphan' && e.hostId === 'host-1')).toBe(true);
    expect(report.resolved.map((r) => r.task).sort()).toEqual(
      ['deleting', 'powering_off', 'rebooting_hard', 'spawning', 'spawning'].sort(),
    );
    const usage = await internalsOf(b.compute).quota.usage('p1');
    expect(usage.inUse.instances).toBe(live.length);
    expect(usage.reserved.instances).toBe(0);
    expect(await internalsOf(b.compute).actions.listPending()).toHaveLength(0);

    // the reconciled world keeps working and cleans up completely
    for (const i of live) await b.compute.delete(i.id);
    expect(await internalsOf(b.compute).claims.list()).toHaveLength(0);
    expect(b.drivers[0]!.guestCount).toBe(0);
  });

  it('unplugs and releases the devices of attaches an engine did not finish (plugged in or not), and keeps finished ones', async () => {
    const volumes = new MemoryVolumes(['kept', 'plugged', 'unplugged']);
    const network = new MemoryNetwork(['net-a']);
    const world = durableWorld({ volumes, network });
    const a = await world.boot();
    const req = { name: 'vm', projectId: 'p1', userId: 'u1', flavorId: 'm1.small', imageId: 'cirros' };
    const [vm, other] = await a.compute.create({ ...req, count: 2 });
    await a.compute.attachVolume(vm!.id, { volumeId: 'kept' });
    const host = a.drivers[0]!;
    // the process "dies" after the driver plugged a volume in, before the attach was recorded
    host.hangNext('attachVolume', 'after');
    void a.compute.attachVolume(vm!.id, { volumeId: 'plugged' });
    await until(async () => host.guest(vm!.id)?.volumes?.plugged !== undefined);
    // and while an interface's port was bound but not yet plugged in
    host.hangNext('attachInterface', 'before');
    void a.compute.attachInterface(other!.id, { networkId: 'net-a' });
    await until(async () => network.boundTo(other!.id).length === 1);
    await until(async () => (await a.compute.get(other!.id)).ports?.[0]?.attaching === true);
    expect((await a.compute.get(vm!.id)).volumes?.map((v) => [v.volumeId, v.attaching])).toEqual([
      ['kept', undefined],
      ['plugged', true],
    ]);

    const b = await world.boot();
    await b.compute.open();
    const after = await b.compute.get(vm!.id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null });
    expect(after.volumes?.map((v) => v.volumeId)).toEqual(['kept']);
    expect(volumes.connectedTo(vm!.id)).toEqual(['kept']);
    expect(b.drivers[0]!.guest(vm!.id)?.volumes).toEqual({ kept: 'vdb' });
    const otherAfter = await b.compute.get(other!.id);
    expect(otherAfter).toMatchObject({ vmState: 'active', taskState: null, ports: [] });
    expect(network.ports.size).toBe(0);
    expect(b.drivers[0]!.guest(other!.id)?.interfaces ?? {}).toEqual({});
    // the volume can be attached again, and the finished one detached
    expect((await b.compute.attachVolume(vm!.id, { volumeId: 'plugged' })).volumes).toHaveLength(2);
    await b.compute.detachVolume(vm!.id, 'kept');
    expect(volumes.connectedTo(vm!.id)).toEqual(['plugged']);
  });

  it('undoes the attaches whose deadline ended their task, when their engine died before the driver answered', async () => {
    const volumes = new MemoryVolumes(['late']);
    const network = new MemoryNetwork(['net-a']);
    const world = durableWorld({ volumes, network }, { timeouts: { power: 300 } as never });
    const a = await world.boot();
    const req = { name: 'vm', projectId: 'p1', userId: 'u1', flavorId: 'm1.small', imageId: 'cirros' };
    const [vm, other] = await a.compute.create({ ...req, count: 2 });
    const host = a.drivers[0]!;
    // the driver plugs the volume in but answers after the deadline; the port's plug never begins
    host.hangNext('attachVolume', 'after');
    await expect(a.compute.attachVolume(vm!.id, { volumeId: 'late' })).rejects.toBeInstanceOf(
      DeadlineExceededError,
    );
    host.hangNext('attachInterface', 'before');
    await expect(a.compute.attachInterface(other!.id, { networkId: 'net-a' })).rejects.toBeInstanceOf(
      DeadlineExceededError,
    );
    // the tasks ended with the deadline's fault, the devices are still marked (no attaching_* task)
    const marked = await a.compute.get(vm!.id);
    expect(marked).toMatchObject({ taskState: null, fault: { code: ErrorCode.DeadlineExceeded } });
    expect(marked.volumes?.map((v) => [v.volumeId, v.attaching])).toEqual([['late', true]]);
    expect(host.guest(vm!.id)?.volumes).toEqual({ late: 'vdb' });
    expect((await a.compute.get(other!.id)).ports?.map((p) => p.attaching)).toEqual([true]);
    expect(network.boundTo(other!.id)).toHaveLength(1);

    // the engine "dies" before the drivers answer; the next one undoes both attaches at start-up
    const b = await world.boot();
    const report = await b.compute.open();
    const after = await b.compute.get(vm!.id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null, volumes: [] });
    expect(b.drivers[0]!.guest(vm!.id)?.volumes ?? {}).toEqual({});
    expect(volumes.connectedTo(vm!.id)).toEqual([]);
    expect((await b.compute.get(other!.id)).ports).toEqual([]);
    expect(network.ports.size).toBe(0);
    expect([...report.undoneAttaches].sort()).toEqual([vm!.id, other!.id].sort());
    expect(report.resolved).toEqual([]);
    // both instances take actions again
    await b.compute.powerOff(vm!.id);
    expect((await b.compute.attachVolume(vm!.id, { volumeId: 'late' })).volumes).toHaveLength(1);
    expect((await b.compute.attachInterface(other!.id, { networkId: 'net-a' })).ports).toHaveLength(1);
  });

  it('destroys orphans when reapOrphans is on', async () => {
    const world = durableWorld();
    const a = await world.boot();
    a.drivers[1]!.addOrphan('11111111-2222-4333-8444-555555555555');
    const drivers = [0, 1].map((i) => new FakeDriver({ statePath: a.drivers[i]!.statePath }));
    const compute = await createCompute({
      scheduler: ({ claims }) => new FirstFitScheduler(claims),
      stores: world.stores,
      hosts: drivers.map((driver, i) => ({ id: `host-${i}`, driver })),
      engine: { reapOrphans: true },
      reconcile: false,
    });
    const report = await compute.open();
    expect(report.orphans).toEqual([
      { instanceId: '11111111-2222-4333-8444-555555555555', hostId: 'host-1', reaped: true },
    ]);
    expect(drivers[1]!.guestCount).toBe(0);
  });
});

describe('power-state sync from driver events', () => {
  it('moves an instance whose guest dies to stopped, and one whose guest vanishes to error', async () => {
    const world = durableWorld();
    const { compute, drivers } = await world.boot();
    const [a, b] = await compute.create({
      name: 'vm',
      projectId: 'p1',
      userId: 'u1',
      flavorId: 'm1.small',
      imageId: 'cirros',
      count: 2,
    });
    drivers[0]!.crash(a!.id);
    drivers[0]!.vanish(b!.id);
    await until(
      async () =>
        (await compute.get(a!.id)).vmState === 'stopped' && (await compute.get(b!.id)).vmState === 'error',
    );
    expect(await compute.get(a!.id)).toMatchObject({
      vmState: 'stopped',
      powerState: 'shutdown',
      taskState: null,
    });
    expect(await compute.get(b!.id)).toMatchObject({ vmState: 'error', powerState: 'nostate' });
    expect((await compute.get(b!.id)).fault?.code).toBe('NLFS_GUEST_MISSING');
    await compute.powerOn(a!.id);
    expect((await compute.get(a!.id)).vmState).toBe('active');
  });

  it('ignores a late event that no longer matches what the hypervisor reports', async () => {
    const world = durableWorld();
    const { compute, drivers } = await world.boot();
    const [a] = await compute.create({
      name: 'vm',
      projectId: 'p1',
      userId: 'u1',
      flavorId: 'm1.small',
      imageId: 'cirros',
    });
    const before = await compute.get(a!.id);
    drivers[0]!.emitStaleEvent(a!.id, 'shutdown');
    await new Promise((r) => setTimeout(r, 20));
    expect(await compute.get(a!.id)).toMatchObject({
      vmState: 'active',
      powerState: 'running',
      revision: before.revision,
    });
  });
});
