import { describe, expect, it } from 'vitest';
import { InstanceLockedError, ValidationError } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';

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
    // nothing changed, no action recorded by the refusals
    expect(await compute.get(vm!.id)).toEqual(before);
    expect((await compute.listActions(vm!.id)).map((a) => a.action)).toEqual(['create']);
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
});
