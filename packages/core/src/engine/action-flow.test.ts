import { describe, expect, it } from 'vitest';
import { CapabilityUnsupportedError, DriverError, InvalidStateError, NotFoundError } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';

describe('lifecycle actions', () => {
  it('runs stop, start, reboot, pause, unpause, suspend, resume and rebuild with the expected states', async () => {
    const cloud = await createFakeCloud();
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const states = async () => {
      const i = await compute.get(id);
      return `${i.vmState}/${i.powerState}/${i.taskState ?? '-'}`;
    };
    await compute.powerOff(id);
    expect(await states()).toBe('stopped/shutdown/-');
    await compute.powerOn(id);
    expect(await states()).toBe('active/running/-');
    await compute.reboot(id, 'soft');
    await compute.reboot(id, 'hard');
    expect(await states()).toBe('active/running/-');
    await compute.pause(id);
    expect(await states()).toBe('paused/paused/-');
    await compute.unpause(id);
    await compute.suspend(id);
    expect(await states()).toBe('suspended/suspended/-');
    await compute.resume(id);
    await compute.images.register(
      { id: 'debian', name: 'debian', diskFormat: 'qcow2', sha256: 'b'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array([2]) },
    );
    const rebuilt = await compute.rebuild(id, { imageId: 'debian', name: 'renamed' });
    expect(rebuilt).toMatchObject({ imageId: 'debian', name: 'renamed', vmState: 'active' });
    expect(await compute.consoleOutput(id)).toMatch(/fake boot 4/);
    const actions = (await compute.listActions(id)).map((a) => `${a.action}:${a.result}`);
    expect(actions).toEqual([
      'create:success',
      'stop:success',
      'start:success',
      'reboot:success',
      'reboot_hard:success',
      'pause:success',
      'unpause:success',
      'suspend:success',
      'resume:success',
      'rebuild:success',
    ]);
  });

  it('refuses an action in the wrong state with the current states, changing nothing', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    const err = await cloud.compute.unpause(vm!.id).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect(err.details).toMatchObject({ action: 'unpause', vmState: 'active', taskState: null });
    expect((await cloud.compute.get(vm!.id)).revision).toBe(vm!.revision);
    expect(await cloud.compute.listActions(vm!.id)).toHaveLength(1);
  });

  it('refuses an action the driver cannot do with a typed error before any state change', async () => {
    const cloud = await createFakeCloud({ hosts: 1, driver: { capabilities: { suspend: false } } });
    const [vm] = await cloud.compute.create(cloud.request());
    const err = await cloud.compute.suspend(vm!.id).catch((e) => e);
    expect(err).toBeInstanceOf(CapabilityUnsupportedError);
    expect(err.details).toEqual({ capability: 'suspend', driver: 'fake', hostId: 'host-0' });
    expect((await cloud.compute.get(vm!.id)).revision).toBe(vm!.revision);
  });

  it('allows one task at a time per instance, while instances proceed concurrently', async () => {
    const cloud = await createFakeCloud({ driver: { latencyMs: { reboot: 30, powerOff: 30 } } });
    const [a, b] = await cloud.compute.create(cloud.request({ count: 2 }));
    const results = await Promise.allSettled([
      cloud.compute.reboot(a!.id),
      cloud.compute.powerOff(a!.id),
      cloud.compute.powerOff(b!.id),
    ]);
    expect(results[0]!.status).toBe('fulfilled');
    expect(results[1]!.status).toBe('rejected');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidStateError);
    expect((results[1] as PromiseRejectedResult).reason.details.taskState).toBe('rebooting');
    expect(results[2]!.status).toBe('fulfilled');
    expect((await cloud.compute.get(b!.id)).vmState).toBe('stopped');
  });

  it('clears the task and records a fault when the driver fails', async () => {
    const cloud = await createFakeCloud();
    const [vm] = await cloud.compute.create(cloud.request());
    cloud.drivers[0]!.failNext('pause', { times: 1, message: 'guest agent timeout' });
    await expect(cloud.compute.pause(vm!.id)).rejects.toBeInstanceOf(DriverError);
    const after = await cloud.compute.get(vm!.id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null });
    expect(after.fault!.message).toMatch(/guest agent timeout/);
    const last = (await cloud.compute.listActions(vm!.id)).at(-1)!;
    expect(last).toMatchObject({ action: 'pause', result: 'error' });
    await cloud.compute.pause(vm!.id);
    expect((await cloud.compute.get(vm!.id)).fault).toBeNull();
  });

  it('raises NotFoundError for an unknown instance', async () => {
    const cloud = await createFakeCloud();
    const err = await cloud.compute.powerOff('00000000-0000-4000-8000-000000000000').catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.details).toMatchObject({ kind: 'instance', field: 'id' });
  });
});
