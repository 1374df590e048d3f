import { describe, expect, it } from 'vitest';
import {
  CapabilityUnsupportedError,
  DriverError,
  ErrorCode,
  InstanceLockedError,
  InvalidStateError,
  NotFoundError,
  ValidationError,
} from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { cloudWithInstance, MemoryVolumes } from '../testing/memory-adapters.js';

const cloudWith = (a: MemoryVolumes, capabilities?: { volumeAttach: boolean }) =>
  cloudWithInstance({ volumes: a }, capabilities);

const owner = { userId: 'u1', projectId: 'p1', isAdmin: false };

describe('volume attach and detach', () => {
  it('attaches a volume to a running instance, records it, and detaches it again', async () => {
    const volumes = new MemoryVolumes(['vol-1', 'vol-2']);
    const { compute, vm, driver } = await cloudWith(volumes);
    const attached = await compute.attachVolume(vm.id, { volumeId: 'vol-1', device: '/dev/vdc' }, owner);
    expect(attached).toMatchObject({
      vmState: 'active',
      taskState: null,
      powerState: 'running',
      fault: null,
    });
    expect(attached.volumes).toEqual([
      { volumeId: 'vol-1', device: 'vdc', connection: { type: 'file', path: '/volumes/vol-1' } },
    ]);
    expect(driver.guest(vm.id)?.volumes).toEqual({ 'vol-1': 'vdc' });
    expect(volumes.connectedTo(vm.id)).toEqual(['vol-1']);
    // a second volume without a device: the driver picks the next free disk
    await compute.attachVolume(vm.id, { volumeId: 'vol-2' });
    expect(driver.guest(vm.id)?.volumes).toEqual({ 'vol-1': 'vdc', 'vol-2': 'vdb' });
    expect((await compute.get(vm.id)).volumes?.map((v) => v.volumeId)).toEqual(['vol-1', 'vol-2']);

    const detached = await compute.detachVolume(vm.id, 'vol-1', owner);
    expect(detached.volumes?.map((v) => v.volumeId)).toEqual(['vol-2']);
    expect(driver.guest(vm.id)?.volumes).toEqual({ 'vol-2': 'vdb' });
    expect(volumes.connectedTo(vm.id)).toEqual(['vol-2']);
    expect((await compute.listActions(vm.id)).map((a) => [a.action, a.result])).toEqual([
      ['create', 'success'],
      ['attach_volume', 'success'],
      ['attach_volume', 'success'],
      ['detach_volume', 'success'],
    ]);
    await compute.close();
  });

  it('attaches to a stopped or paused instance and keeps its state; refuses a suspended one before asking the adapter', async () => {
    const volumes = new MemoryVolumes(['vol-1', 'vol-2']);
    const { compute, vm } = await cloudWith(volumes);
    await compute.powerOff(vm.id);
    const stopped = await compute.attachVolume(vm.id, { volumeId: 'vol-1' });
    expect(stopped).toMatchObject({ vmState: 'stopped', powerState: 'shutdown', taskState: null });
    await compute.powerOn(vm.id);
    await compute.pause(vm.id);
    expect(await compute.detachVolume(vm.id, 'vol-1')).toMatchObject({ vmState: 'paused', volumes: [] });
    await compute.unpause(vm.id);
    await compute.suspend(vm.id);
    const before = volumes.log.length;
    await expect(compute.attachVolume(vm.id, { volumeId: 'vol-2' })).rejects.toBeInstanceOf(
      InvalidStateError,
    );
    expect(volumes.log.length).toBe(before);
    expect(volumes.connectedTo(vm.id)).toEqual([]);
    await compute.close();
  });

  it('refuses an unknown volume and one attached elsewhere with the typed error, connecting nothing and clearing the task', async () => {
    const volumes = new MemoryVolumes(['vol-1']);
    const { compute, vm, request } = await cloudWith(volumes);
    const [other] = await compute.create(request({ name: 'other' }));
    await compute.attachVolume(other!.id, { volumeId: 'vol-1' });

    const unknown = await compute.attachVolume(vm.id, { volumeId: 'vol-x' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as NotFoundError).details).toMatchObject({ field: 'volumeId' });
    const inUse = await compute.attachVolume(vm.id, { volumeId: 'vol-1' }).catch((e: unknown) => e);
    expect(inUse).toBeInstanceOf(ValidationError);
    expect((inUse as ValidationError).details.issues[0]?.path).toBe('volumeId');

    const after = await compute.get(vm.id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null });
    expect(after.volumes ?? []).toEqual([]);
    expect(volumes.attachedTo.get('vol-1')).toBe(other!.id);
    expect((await compute.listActions(vm.id)).map((a) => [a.action, a.result])).toEqual([
      ['create', 'success'],
      ['attach_volume', 'error'],
      ['attach_volume', 'error'],
    ]);
    // the same volume twice on one instance is refused before anything is asked
    const twice = await compute.attachVolume(other!.id, { volumeId: 'vol-1' }).catch((e: unknown) => e);
    expect((twice as ValidationError).details.issues[0]).toMatchObject({
      path: 'volumeId',
      rule: 'attached',
    });
    await compute.close();
  });

  it('disconnects the volume when the driver fails to plug it in, and records the fault', async () => {
    const volumes = new MemoryVolumes(['vol-1']);
    const { compute, vm, driver } = await cloudWith(volumes);
    driver.failNext('attachVolume', { times: 1, message: 'hot-plug refused' });
    await expect(compute.attachVolume(vm.id, { volumeId: 'vol-1' })).rejects.toBeInstanceOf(DriverError);
    const after = await compute.get(vm.id);
    expect(after).toMatchObject({
      vmState: 'active',
      taskState: null,
      fault: { message: /hot-plug refused/ },
    });
    expect(after.volumes ?? []).toEqual([]);
    expect(volumes.connectedTo(vm.id)).toEqual([]);
    expect(driver.guest(vm.id)?.volumes).toBeUndefined();
    // the next attempt works
    expect((await compute.attachVolume(vm.id, { volumeId: 'vol-1' })).volumes).toHaveLength(1);
    await compute.close();
  });

  it('keeps a volume attached when the driver fails to unplug it', async () => {
    const volumes = new MemoryVolumes(['vol-1']);
    const { compute, vm, driver } = await cloudWith(volumes);
    await compute.attachVolume(vm.id, { volumeId: 'vol-1' });
    driver.failNext('detachVolume', { times: 1, message: 'device busy' });
    await expect(compute.detachVolume(vm.id, 'vol-1')).rejects.toBeInstanceOf(DriverError);
    expect((await compute.get(vm.id)).volumes?.map((v) => v.volumeId)).toEqual(['vol-1']);
    expect(volumes.connectedTo(vm.id)).toEqual(['vol-1']);
    expect(driver.guest(vm.id)?.volumes).toEqual({ 'vol-1': 'vdb' });
    await compute.close();
  });

  it('refuses a driver without hot-plug, a locked instance, a hostile id or device, and an unknown attachment', async () => {
    const volumes = new MemoryVolumes(['vol-1']);
    const plain = await cloudWith(volumes, { volumeAttach: false });
    const e = await plain.compute.attachVolume(plain.vm.id, { volumeId: 'vol-1' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CapabilityUnsupportedError);
    expect((e as CapabilityUnsupportedError).details).toMatchObject({ capability: 'volumeAttach' });
    await plain.compute.close();

    const { compute, vm } = await cloudWith(volumes);
    for (const [input, field] of [
      [{ volumeId: "vol'; DROP TABLE instances;--" }, 'volumeId'],
      [{ volumeId: 'a\u0000b' }, 'volumeId'],
      [{ volumeId: 'v'.repeat(10_000) }, 'volumeId'],
      [{ volumeId: 'vol-1', device: '<disk/>' }, 'device'],
      [{ volumeId: 'vol-1', device: 'vdb; rm -rf /' }, 'device'],
      [{ volumeId: 'vol-1', extra: 1 }, 'extra'],
    ] as const) {
      const bad = await compute.attachVolume(vm.id, input as never).catch((x: unknown) => x);
      expect(bad, JSON.stringify(input)).toBeInstanceOf(ValidationError);
      expect((bad as ValidationError).details.issues.map((i) => i.path)).toContain(field);
    }
    const notAttached = await compute.detachVolume(vm.id, 'vol-1').catch((x: unknown) => x);
    expect(notAttached).toMatchObject({ code: ErrorCode.NotFound, details: { field: 'volumeId' } });
    await expect(compute.attachVolume('no-such-instance', { volumeId: 'vol-1' })).rejects.toMatchObject({
      code: ErrorCode.NotFound,
    });

    await compute.lock(vm.id, { reason: 'hold' }, { userId: 'admin', projectId: 'admin', isAdmin: true });
    await expect(compute.attachVolume(vm.id, { volumeId: 'vol-1' }, owner)).rejects.toBeInstanceOf(
      InstanceLockedError,
    );
    expect(volumes.connectedTo(vm.id)).toEqual([]);
    expect((await compute.get(vm.id)).taskState).toBeNull();
    await compute.close();
  });

  it('records the volumes a create attached, detaches one of them, and disconnects the rest on delete', async () => {
    const volumes = new MemoryVolumes(['boot-data', 'logs']);
    const cloud = await createFakeCloud({ hosts: 1, core: { volumes } });
    const { compute } = cloud;
    const [vm] = await compute.create(
      cloud.request({ volumes: [{ volumeId: 'boot-data', device: 'vdb' }, { volumeId: 'logs' }] }),
    );
    const created = await compute.get(vm!.id);
    // a volume asked without a device is recorded with the one the spawn gave it
    expect(created.volumes?.map((v) => [v.volumeId, v.device])).toEqual([
      ['boot-data', 'vdb'],
      ['logs', 'vdc'],
    ]);
    expect(cloud.drivers[0]!.guest(vm!.id)?.volumes).toEqual({ 'boot-data': 'vdb', logs: 'vdc' });
    await compute.detachVolume(vm!.id, 'logs');
    expect(volumes.connectedTo(vm!.id)).toEqual(['boot-data']);
    expect(cloud.drivers[0]!.guest(vm!.id)?.volumes).toEqual({ 'boot-data': 'vdb' });
    await compute.delete(vm!.id);
    expect(volumes.connectedTo(vm!.id)).toEqual([]);
    expect(cloud.drivers[0]!.hasGuest(vm!.id)).toBe(false);
    await compute.close();
  });

  it('lets one of two racing attaches of the same volume win; the loser leaves the winner connected', async () => {
    const volumes = new MemoryVolumes(['vol-1']);
    const { compute, vm, driver } = await cloudWith(volumes);
    const results = await Promise.allSettled([
      compute.attachVolume(vm.id, { volumeId: 'vol-1' }),
      compute.attachVolume(vm.id, { volumeId: 'vol-1' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const after = await compute.get(vm.id);
    expect(after.volumes?.map((v) => v.volumeId)).toEqual(['vol-1']);
    expect(after.taskState).toBeNull();
    expect(volumes.connectedTo(vm.id)).toEqual(['vol-1']);
    expect(driver.guest(vm.id)?.volumes).toEqual({ 'vol-1': 'vdb' });
    await compute.close();
  });
});
