import { describe, expect, it } from 'vitest';
import { DriverError } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

describe('delete', () => {
  it('is idempotent: deleting twice, or a gone id, resolves', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    await cloud.compute.delete(vm!.id);
    await cloud.compute.delete(vm!.id);
    await cloud.compute.delete('00000000-0000-4000-8000-000000000000');
    expect(await cloud.compute.list()).toHaveLength(0);
    expect(cloud.drivers[0]!.guestCount).toBe(0);
    expect(cloud.drivers[0]!.calls.destroy).toBe(1);
  });

  it('joins a delete already running for the same instance', async () => {
    const cloud = await createFakeCloud({ driver: { latencyMs: { destroy: 30 } } });
    const [vm] = await cloud.compute.create(cloud.request());
    await Promise.all([
      cloud.compute.delete(vm!.id),
      cloud.compute.delete(vm!.id),
      cloud.compute.delete(vm!.id),
    ]);
    expect(cloud.drivers[0]!.calls.destroy).toBe(1);
    expect(await cloud.compute.list()).toHaveLength(0);
  });

  it('works from ERROR and keeps the action history for a while after', async () => {
    const cloud = await createFakeCloud({ hosts: 1, driver: { failures: { spawn: {} } } });
    const [vm] = await cloud.compute.create(cloud.request());
    expect(vm!.vmState).toBe('error');
    await cloud.compute.delete(vm!.id, { userId: 'admin', requestId: 'r-del' });
    expect(await cloud.compute.list()).toHaveLength(0);
    const history = await cloud.compute.listActions(vm!.id);
    expect(history.map((a) => [a.action, a.result])).toEqual([
      ['create', 'error'],
      ['delete', 'success'],
    ]);
    expect(history[1]).toMatchObject({ userId: 'admin', requestId: 'r-del' });
  });

  it('works from a stuck task and overrides any task in progress', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    const stuck = await internalsOf(cloud.compute).instances.update(
      vm!.id,
      vm!.revision,
      { taskState: 'rebooting' },
      Date.now(),
    );
    expect(stuck.taskState).toBe('rebooting');
    await cloud.compute.delete(vm!.id);
    expect(await cloud.compute.list()).toHaveLength(0);
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(0);
  });

  it('stops a build in progress: no guest, claim or quota is left behind', async () => {
    const cloud = await createFakeCloud({ driver: { latencyMs: { spawn: 40 } } });
    const { instances, done } = await cloud.compute.submit(cloud.request({ count: 3 }));
    await new Promise((r) => setTimeout(r, 10));
    await Promise.all(instances.map((i) => cloud.compute.delete(i.id)));
    await done;
    await new Promise((r) => setTimeout(r, 60));
    expect(await cloud.compute.list()).toHaveLength(0);
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(0);
    for (const d of cloud.drivers) expect(d.guestCount).toBe(0);
    expect(cloud.scheduler.usage('host-0').VCPU ?? 0).toBe(0);
    const usage = await internalsOf(cloud.compute).quota.usage('p1');
    expect(usage.inUse.instances).toBe(0);
    expect(usage.reserved.instances).toBe(0);
    // each create action ended (as aborted), none is left pending; each delete succeeded
    expect(await internalsOf(cloud.compute).actions.listPending()).toEqual([]);
    for (const i of instances) {
      const actions = await cloud.compute.listActions(i.id);
      expect(actions.map((a) => [a.action, a.result])).toEqual([
        ['create', 'error'],
        ['delete', 'success'],
      ]);
      expect(actions[0]!.fault?.code).toBe('NLFS_BUILD_ABORTED');
    }
  });

  it('puts the instance in ERROR with a fault when the driver cannot destroy, and a retry succeeds', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    cloud.drivers[0]!.failNext('destroy', { times: 1, message: 'device busy' });
    await expect(cloud.compute.delete(vm!.id)).rejects.toBeInstanceOf(DriverError);
    const failed = await cloud.compute.get(vm!.id);
    expect(failed).toMatchObject({ vmState: 'error', taskState: null });
    expect(failed.fault!.message).toMatch(/device busy/);
    expect(await internalsOf(cloud.compute).claims.list({ instanceId: vm!.id })).toHaveLength(1);
    await cloud.compute.delete(vm!.id);
    expect(await cloud.compute.list()).toHaveLength(0);
    expect(await internalsOf(cloud.compute).claims.list()).toHaveLength(0);
  });
});
