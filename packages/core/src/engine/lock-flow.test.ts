import { describe, expect, it } from 'vitest';
import { InstanceLockedError, ValidationError } from '../errors.js';
import type { LoggedEvent, StoreWrite, UnitOfWork } from '../ports/unit-of-work.js';
import { memoryUnitStores } from '../store/memory-unit-of-work.js';
import { createFakeCloud } from '../testing/engine-fixture.js';

/** A unit of work that keeps every unit it was given and can fail the next one. */
class RecordingUnit implements UnitOfWork {
  readonly units: StoreWrite[][] = [];
  failNext = false;
  constructor(private readonly inner: UnitOfWork) {}
  async commit(writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected store failure');
    }
    this.units.push([...writes]);
    return this.inner.commit(writes);
  }
}

const owner = { userId: 'u1', projectId: 'p1', isAdmin: false };
const admin = { userId: 'admin', projectId: 'admin', isAdmin: true };

describe('lock and unlock', () => {
  it('refuses actions of non-admins on a locked instance before any state changes; an admin may act', async () => {
    const cloud = await createFakeCloud();
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const locked = await compute.lock(vm!.id, { reason: 'maintenance' }, owner);
    expect(locked.locked).toMatchObject({ by: 'owner', reason: 'maintenance', userId: 'u1' });
    const before = await compute.get(vm!.id);
    await expect(compute.powerOff(vm!.id, owner)).rejects.toMatchObject({
      code: 'NLFS_INSTANCE_LOCKED',
      details: { instanceId: vm!.id, action: 'stop', lockedBy: 'owner', reason: 'maintenance' },
    });
    await expect(compute.delete(vm!.id, owner)).rejects.toBeInstanceOf(InstanceLockedError);
    await expect(compute.reboot(vm!.id, 'hard', owner)).rejects.toBeInstanceOf(InstanceLockedError);
    // nothing changed, no action recorded by the refusals (the lock itself is recorded)
    expect(await compute.get(vm!.id)).toEqual(before);
    expect((await compute.listActions(vm!.id)).map((a) => a.action)).toEqual(['create', 'lock']);
    // an admin acts on it, and so does the operator (no request context)
    expect((await compute.powerOff(vm!.id, admin)).vmState).toBe('stopped');
    expect((await compute.powerOn(vm!.id)).vmState).toBe('active');
    // the owner lifts an owner's lock; then actions pass again
    expect((await compute.unlock(vm!.id, owner)).locked).toBeNull();
    expect((await compute.powerOff(vm!.id, owner)).vmState).toBe('stopped');
    await compute.close();
  });

  it("keeps an admin's lock against the owner's unlock, and the first lock against a second", async () => {
    const cloud = await createFakeCloud();
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.lock(vm!.id, { reason: 'legal hold' }, admin);
    const again = await compute.lock(vm!.id, { reason: 'other' }, owner);
    expect(again.locked).toMatchObject({ by: 'admin', reason: 'legal hold' });
    await expect(compute.unlock(vm!.id, owner)).rejects.toMatchObject({
      code: 'NLFS_INSTANCE_LOCKED',
      details: { action: 'unlock', lockedBy: 'admin' },
    });
    expect((await compute.get(vm!.id)).locked?.by).toBe('admin');
    expect((await compute.unlock(vm!.id, admin)).locked).toBeNull();
    await compute.close();
  });

  it('names the field of a bad reason', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    const e = await cloud.compute.lock(vm!.id, { reason: 'x'.repeat(256) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).details.issues[0]?.path).toBe('reason');
    const bad = await cloud.compute.lock(vm!.id, { reason: 'a\u0000b' }).catch((x: unknown) => x);
    expect((bad as ValidationError).details.issues[0]?.path).toBe('reason');
    expect((await cloud.compute.get(vm!.id)).locked ?? null).toBeNull();
    await cloud.compute.close();
  });

  it('records lock and unlock as finished actions of the caller, in the unit of work that changes the lock', async () => {
    const { unit: memoryUnit, ...stores } = memoryUnitStores();
    const unit = new RecordingUnit(memoryUnit);
    const cloud = await createFakeCloud({ core: { stores: { ...stores, unit } } });
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const seen: string[] = [];
    const sub = compute.watch(id).subscribe((e) => {
      if (e.type === 'instance.action') seen.push(`${e.action.action}:${e.action.result}`);
    });
    const units = unit.units.length;
    await compute.lock(id, { reason: 'audit' }, { ...owner, requestId: 'req-lock-1' });
    // one unit: the lock, the action's start and its end
    expect(unit.units.length).toBe(units + 1);
    expect(unit.units.at(-1)!.map((w) => w.kind)).toEqual(
      expect.arrayContaining(['instance.update', 'action.start', 'action.finish']),
    );
    await compute.unlock(id, { ...admin, requestId: 'req-unlock-1' });
    const actions = await compute.listActions(id);
    expect(actions.map((a) => a.action)).toEqual(['create', 'lock', 'unlock']);
    const [, lock, unlock] = actions;
    expect(lock).toMatchObject({
      instanceId: id,
      requestId: 'req-lock-1',
      userId: 'u1',
      projectId: 'p1',
      result: 'success',
      fault: null,
    });
    expect(lock!.finishedAt).toBe(lock!.startedAt);
    expect(unlock).toMatchObject({
      requestId: 'req-unlock-1',
      userId: 'admin',
      projectId: 'admin',
      result: 'success',
      fault: null,
    });
    expect(unlock!.finishedAt).toBe(unlock!.startedAt);
    // an instant action takes no task and leaves no pending record
    expect((await compute.get(id)).taskState).toBeNull();
    expect(actions.every((a) => a.result !== 'pending')).toBe(true);
    expect(seen).toEqual(['lock:pending', 'lock:success', 'unlock:pending', 'unlock:success']);
    sub.unsubscribe();
    await compute.close();
  });

  it('records nothing when the unit fails, nor for a lock that changes nothing; an unlock of an unlocked instance is recorded', async () => {
    const { unit: memoryUnit, ...stores } = memoryUnitStores();
    const unit = new RecordingUnit(memoryUnit);
    const cloud = await createFakeCloud({ core: { stores: { ...stores, unit } } });
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    unit.failNext = true;
    await expect(compute.lock(id, {}, owner)).rejects.toThrow('injected store failure');
    expect((await compute.get(id)).locked ?? null).toBeNull();
    expect((await compute.listActions(id)).map((a) => a.action)).toEqual(['create']);
    // a request without a request id is its own request
    await compute.lock(id, {}, { userId: 'u1', projectId: 'p1', isAdmin: false });
    await compute.lock(id, { reason: 'second' }, owner);
    await compute.unlock(id, owner);
    await compute.unlock(id, owner);
    const actions = await compute.listActions(id);
    expect(actions.map((a) => a.action)).toEqual(['create', 'lock', 'unlock', 'unlock']);
    expect(actions[1]!.requestId).toBe(actions[1]!.id);
    expect(new Set(actions.map((a) => a.requestId)).size).toBe(4);
    // a refused unlock records nothing
    await compute.lock(id, {}, admin);
    await expect(compute.unlock(id, owner)).rejects.toBeInstanceOf(InstanceLockedError);
    expect((await compute.listActions(id)).map((a) => a.action)).toEqual([
      'create',
      'lock',
      'unlock',
      'unlock',
      'lock',
    ]);
    await compute.close();
  });
});
