import { describe, expect, it } from 'vitest';
import { isNovaError } from '../errors.js';
import { createFakeCloud, type FakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';
import type { InstanceEvent } from './events.js';

async function claimsOf(cloud: FakeCloud, instanceId: string) {
  return (await internalsOf(cloud.compute).claims.list({ instanceId })).map((c) => c.hostId);
}

describe('evacuate', () => {
  it('moves a down host instances to other hosts: claims moved, quota unchanged, power state kept', async () => {
    const cloud = await createFakeCloud({ hosts: 3 });
    const { compute, drivers } = cloud;
    const [a, b] = await compute.create(cloud.request({ count: 2 }));
    expect([a!.hostId, b!.hostId]).toEqual(['host-0', 'host-0']);
    await compute.powerOff(b!.id);
    const usageBefore = await compute.quotas.get('p1');
    const events: InstanceEvent[] = [];
    compute.events$.subscribe((e) => events.push(e));

    await compute.hosts.setStatus('host-0', { up: false });
    // a down host's instances show an unknown power state, their vm state kept
    expect(await compute.get(a!.id)).toMatchObject({ vmState: 'active', powerState: 'nostate' });
    expect(await compute.get(b!.id)).toMatchObject({ vmState: 'stopped', powerState: 'nostate' });

    const report = await compute.evacuate('host-0', { request: { requestId: 'evac-1', userId: 'admin' } });
    expect(report.hostId).toBe('host-0');
    expect(report.instances).toHaveLength(2);
    for (const r of report.instances)
      expect(r).toMatchObject({ result: 'evacuated', fromHostId: 'host-0', hostId: 'host-1' });

    const movedA = await compute.get(a!.id);
    const movedB = await compute.get(b!.id);
    expect(movedA).toMatchObject({
      hostId: 'host-1',
      vmState: 'active',
      powerState: 'running',
      taskState: null,
    });
    expect(movedB).toMatchObject({
      hostId: 'host-1',
      vmState: 'stopped',
      powerState: 'shutdown',
      taskState: null,
    });
    expect(drivers[1]!.hasGuest(a!.id)).toBe(true);
    expect(await drivers[1]!.getPowerState(movedB)).toBe('shutdown');
    // the old host's claims released, the new ones held
    expect(await claimsOf(cloud, a!.id)).toEqual(['host-1']);
    expect(await claimsOf(cloud, b!.id)).toEqual(['host-1']);
    expect(cloud.scheduler.usage('host-0').VCPU ?? 0).toBe(0);
    expect(cloud.scheduler.usage('host-1').VCPU).toBe(2);
    expect((await compute.quotas.get('p1')).inUse).toEqual(usageBefore.inUse);
    // an evacuate action, events on the way
    const actions = await compute.listActions(a!.id);
    expect(actions.at(-1)).toMatchObject({
      action: 'evacuate',
      result: 'success',
      requestId: 'evac-1',
      userId: 'admin',
    });
    const mine = events.filter((e) => e.instanceId === a!.id);
    expect(mine.some((e) => e.type === 'instance.state' && e.taskState === 'rebuilding')).toBe(true);
    expect(mine.some((e) => e.type === 'instance.scheduled' && e.hostId === 'host-1')).toBe(true);
    expect(
      mine
        .filter((e) => e.type === 'instance.action')
        .map((e) => e.type === 'instance.action' && e.action.result),
    ).toEqual(['pending', 'success']);
    // a migration record per evacuated instance, as Nova's migrations API shows it
    const [record] = await compute.migrations.list({ instanceId: a!.id });
    expect(record).toMatchObject({
      kind: 'evacuation',
      status: 'done',
      sourceHostId: 'host-0',
      destHostId: 'host-1',
      oldFlavorId: movedA.flavor.id,
      newFlavorId: movedA.flavor.id,
      error: null,
    });
    expect(
      mine
        .filter((e) => e.type === 'instance.migration')
        .map((e) => e.type === 'instance.migration' && [e.migration.status, e.migration.destHostId]),
    ).toEqual([
      ['pre-migrating', null],
      ['pre-migrating', 'host-1'],
      ['done', 'host-1'],
    ]);
    await compute.close();
  });

  it('is refused while the host is up (disabled or not), accepted when disabled and down', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    for (const status of [{}, { enabled: false, disabledReason: 'maintenance' }]) {
      await compute.hosts.setStatus('host-0', status);
      const refused = await compute.evacuate('host-0').catch((e: unknown) => e);
      expect(isNovaError(refused, 'NLFS_HOST_NOT_DOWN')).toBe(true);
      expect((refused as { details: unknown }).details).toMatchObject({ hostId: 'host-0', up: true });
    }
    expect(await compute.get(vm!.id)).toMatchObject({ hostId: 'host-0', vmState: 'active', taskState: null });
    expect(isNovaError(await compute.evacuate('nope').catch((e: unknown) => e), 'NLFS_NOT_FOUND')).toBe(true);
    await compute.hosts.setStatus('host-0', { up: false });
    const report = await compute.evacuate('host-0');
    expect(report.instances[0]).toMatchObject({ result: 'evacuated', hostId: 'host-1' });
    await compute.close();
  });

  it('keeps anti-affinity members apart, and leaves one no host fits on the down host with a NoValidHost fault', async () => {
    const cloud = await createFakeCloud({ hosts: 3 });
    const { compute } = cloud;
    const group = await compute.serverGroups.create({
      id: 'g1',
      name: 'g1',
      projectId: 'p1',
      policy: 'anti-affinity',
    });
    const members = await compute.create(cloud.request({ count: 2, hints: { group: group.id } }));
    expect(members.map((m) => m.hostId).sort()).toEqual(['host-0', 'host-1']);
    const onZero = members.find((m) => m.hostId === 'host-0')!;
    await compute.hosts.setStatus('host-0', { up: false });
    const report = await compute.evacuate('host-0');
    // host-1 holds the other member: the evacuated one goes to host-2
    expect(report.instances).toEqual([
      expect.objectContaining({ instanceId: onZero.id, result: 'evacuated', hostId: 'host-2' }),
    ]);

    // now host-2 goes down: its member has nowhere to go (host-0 down, host-1 holds the other)
    await compute.hosts.setStatus('host-2', { up: false });
    const stuck = await compute.evacuate('host-2');
    expect(stuck.instances[0]).toMatchObject({ instanceId: onZero.id, result: 'failed', hostId: 'host-2' });
    expect(stuck.instances[0]!.fault?.code).toBe('NLFS_NO_VALID_HOST');
    const after = await compute.get(onZero.id);
    expect(after).toMatchObject({ hostId: 'host-2', vmState: 'active', taskState: null });
    expect(after.fault?.code).toBe('NLFS_NO_VALID_HOST');
    expect((await compute.listActions(onZero.id)).at(-1)).toMatchObject({
      action: 'evacuate',
      result: 'error',
    });
    expect(await claimsOf(cloud, onZero.id)).toEqual(['host-2']);
    // no host fitted: the record failed without a destination
    const records = await compute.migrations.list({ instanceId: onZero.id, kind: 'evacuation' });
    expect(records.find((r) => r.sourceHostId === 'host-2')).toMatchObject({
      status: 'failed',
      destHostId: null,
    });
    await compute.close();
  });

  it('skips instances it may not evacuate (paused, with a task) and ones not asked for', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute } = cloud;
    const [a, b, c] = await compute.create(cloud.request({ count: 3 }));
    await compute.pause(b!.id);
    await compute.hosts.setStatus('host-0', { up: false });
    const report = await compute.evacuate('host-0', { onlyInstanceIds: [a!.id, b!.id, 'not-here'] });
    const by = new Map(report.instances.map((r) => [r.instanceId, r]));
    expect(by.get(a!.id)).toMatchObject({ result: 'evacuated', hostId: 'host-1' });
    expect(by.get(b!.id)).toMatchObject({ result: 'skipped', hostId: 'host-0', vmState: 'paused' });
    expect(by.get(b!.id)!.fault?.code).toBe('NLFS_INVALID_STATE');
    expect(by.get('not-here')!.fault?.code).toBe('NLFS_NOT_FOUND');
    expect(by.has(c!.id)).toBe(false);
    expect((await compute.get(c!.id)).hostId).toBe('host-0');
    await compute.close();
  });

  it('a failed spawn on the new host releases its claim and leaves the instance on the down host in ERROR; a retry moves it', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.hosts.setStatus('host-0', { up: false });
    drivers[1]!.failNext('spawn', { times: 1, message: 'disk full' });
    const failed = await compute.evacuate('host-0');
    expect(failed.instances[0]).toMatchObject({ result: 'failed', hostId: 'host-0', vmState: 'error' });
    expect(drivers[1]!.hasGuest(vm!.id)).toBe(false);
    expect(await claimsOf(cloud, vm!.id)).toEqual(['host-0']);
    const [failedRecord] = await compute.migrations.list({ instanceId: vm!.id });
    expect(failedRecord).toMatchObject({ kind: 'evacuation', status: 'failed', destHostId: 'host-1' });
    expect(failedRecord!.error).toContain('disk full');
    const retried = await compute.evacuate('host-0');
    expect(retried.instances[0]).toMatchObject({ result: 'evacuated', hostId: 'host-1', vmState: 'active' });
    expect(await claimsOf(cloud, vm!.id)).toEqual(['host-1']);
    const statuses = (await compute.migrations.list({ instanceId: vm!.id })).map((m) => m.status).sort();
    expect(statuses).toEqual(['done', 'failed']);
    await compute.close();
  });

  it('concurrent evacuations of one host spawn each instance once (one task at a time)', async () => {
    const cloud = await createFakeCloud({ hosts: 3, driver: { latencyMs: { spawn: 20 } } });
    const { compute, drivers } = cloud;
    const vms = await compute.create(cloud.request({ count: 4 }));
    await compute.hosts.setStatus('host-0', { up: false });
    const spawnsBefore = drivers.map((d) => d.calls.spawn ?? 0);
    const reports = await Promise.all([
      compute.evacuate('host-0'),
      compute.evacuate('host-0'),
      compute.evacuate('host-0'),
    ]);
    const evacuated = reports.flatMap((r) =>
      r.instances.filter((i) => i.result === 'evacuated').map((i) => i.instanceId),
    );
    expect(evacuated.sort()).toEqual(vms.map((v) => v.id).sort());
    const spawned = drivers.map((d, i) => (d.calls.spawn ?? 0) - spawnsBefore[i]!);
    expect(spawned.reduce((s, n) => s + n, 0)).toBe(4);
    for (const v of vms) {
      const now = await compute.get(v.id);
      expect(now.hostId).not.toBe('host-0');
      expect(await claimsOf(cloud, v.id)).toEqual([now.hostId]);
      expect((await compute.listActions(v.id)).filter((a) => a.action === 'evacuate')).toHaveLength(1);
    }
    await compute.close();
  });

  it('a returning host destroys its stale copies and reports them, never a guest whose record names it', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute, drivers } = cloud;
    const [moved, stays] = await compute.create(cloud.request({ count: 2 }));
    await compute.hosts.setStatus('host-0', { up: false });
    await compute.evacuate('host-0', { onlyInstanceIds: [moved!.id] });
    // the down host still runs both guests (it was only unreachable)
    expect(drivers[0]!.hasGuest(moved!.id)).toBe(true);
    expect(drivers[0]!.hasGuest(stays!.id)).toBe(true);

    await compute.hosts.setStatus('host-0', { up: true });
    // back up: the instance it kept shows its driver's power state again
    expect(await compute.get(stays!.id)).toMatchObject({
      hostId: 'host-0',
      vmState: 'active',
      powerState: 'running',
    });
    const report = await compute.reconcile();
    expect(report.staleDestroyed).toEqual([
      { instanceId: moved!.id, hostId: 'host-0', movedTo: 'host-1', destroyed: true },
    ]);
    expect(report.orphans).toEqual([]);
    expect(drivers[0]!.hasGuest(moved!.id)).toBe(false);
    expect(drivers[0]!.hasGuest(stays!.id)).toBe(true);
    expect(drivers[1]!.hasGuest(moved!.id)).toBe(true);
    expect(await compute.get(moved!.id)).toMatchObject({
      hostId: 'host-1',
      vmState: 'active',
      powerState: 'running',
    });
    expect((await compute.reconcile()).staleDestroyed).toEqual([]);
    await compute.close();
  });

  it('a guest left for an instance elsewhere that was never evacuated stays an orphan (not destroyed)', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    drivers[1]!.addOrphan(vm!.id, 'p1');
    const report = await compute.reconcile();
    expect(report.staleDestroyed).toEqual([]);
    expect(report.orphans).toEqual([{ instanceId: vm!.id, hostId: 'host-1', reaped: false }]);
    expect(drivers[1]!.hasGuest(vm!.id)).toBe(true);
    await compute.close();
  });
});
