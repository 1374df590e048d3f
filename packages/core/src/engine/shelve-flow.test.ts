import { describe, expect, it } from 'vitest';
import { CapabilityUnsupportedError, InvalidStateError } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

describe('shelve and unshelve', () => {
  it('shelves into the image service, offloads at once (record kept, claim and guest gone), unshelves from the snapshot and removes it', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const imagesBefore = (await compute.images.list()).length;
    const offloaded = await compute.shelve(id);
    expect(offloaded).toMatchObject({
      vmState: 'shelved_offloaded',
      powerState: 'nostate',
      hostId: null,
      taskState: null,
    });
    const snapshotId = offloaded.shelved!.imageId;
    expect(await compute.images.get(snapshotId)).toMatchObject({ properties: { sourceInstance: id } });
    expect(drivers.some((d) => d.hasGuest(id))).toBe(false);
    expect(await internalsOf(compute).claims.list({ instanceId: id })).toEqual([]);
    // the record and its quota stay
    expect((await internalsOf(compute).quota.usage('p1')).inUse.instances).toBe(1);
    const back = await compute.unshelve(id);
    expect(back).toMatchObject({
      vmState: 'active',
      powerState: 'running',
      taskState: null,
      imageId: 'cirros',
    });
    expect(back.shelved ?? null).toBeNull();
    const host = Number(back.hostId!.slice(5));
    // booted from the snapshot, which is gone once it runs
    expect(drivers[host]!.guest(id)?.imageId).toBe(snapshotId);
    expect(await compute.images.get(snapshotId)).toBeUndefined();
    expect((await compute.images.list()).length).toBe(imagesBefore);
    expect(await internalsOf(compute).claims.list({ instanceId: id })).toHaveLength(1);
    expect((await compute.listActions(id)).map((a) => `${a.action}:${a.result}`)).toEqual([
      'create:success',
      'shelve:success',
      'shelveOffload:success',
      'unshelve:success',
    ]);
    await compute.close();
  });

  it('powers the guest off before its snapshot (a disk the guest closed itself, as Nova shelves)', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const driver = drivers[Number(vm!.hostId!.slice(5))]!;
    const seen: string[] = [];
    const snapshot = driver.snapshot.bind(driver);
    driver.snapshot = (instance, options) => {
      seen.push(driver.guest(instance.id)?.powerState ?? 'none');
      return snapshot(instance, options);
    };
    expect(await compute.shelve(id)).toMatchObject({ vmState: 'shelved_offloaded', taskState: null });
    expect(seen).toEqual(['shutdown']);
    await compute.close();
  });

  it('powers a running guest on again when its shelve snapshot fails, with the fault recorded', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const driver = drivers[Number(vm!.hostId!.slice(5))]!;
    const imagesBefore = (await compute.images.list()).length;
    driver.failNext('snapshot');
    await expect(compute.shelve(id)).rejects.toThrow();
    const after = await compute.get(id);
    expect(after).toMatchObject({ vmState: 'active', powerState: 'running', taskState: null });
    expect(after?.fault?.message).toBeTruthy();
    expect(driver.guest(id)?.powerState).toBe('running');
    expect((await compute.images.list()).length).toBe(imagesBefore);
    expect((await compute.listActions(id)).map((a) => `${a.action}:${a.result}`)).toEqual([
      'create:success',
      'shelve:error',
    ]);
    await compute.close();
  });

  it('keeps a shelved guest on its host until the offload time passed; unshelve powers it on in place', async () => {
    let now = 5_000_000;
    const cloud = await createFakeCloud({
      core: { clock: { now: () => now }, engine: { shelvedOffloadTimeMs: 3_600_000 } },
    });
    const { compute, drivers } = cloud;
    const [a, b] = await compute.create(cloud.request({ count: 2 }));
    const shelved = await compute.shelve(a!.id);
    expect(shelved).toMatchObject({ vmState: 'shelved', powerState: 'shutdown', hostId: a!.hostId });
    expect(drivers[Number(a!.hostId!.slice(5))]!.guest(a!.id)?.powerState).toBe('shutdown');
    await expect(compute.powerOn(a!.id)).rejects.toBeInstanceOf(InvalidStateError);
    const inPlace = await compute.unshelve(a!.id);
    expect(inPlace).toMatchObject({ vmState: 'active', powerState: 'running', hostId: a!.hostId });
    await compute.shelve(b!.id);
    now += 3_599_000;
    expect((await compute.reconcile()).offloadedShelves).toEqual([]);
    now += 2_000;
    expect((await compute.reconcile()).offloadedShelves).toEqual([b!.id]);
    expect(await compute.get(b!.id)).toMatchObject({ vmState: 'shelved_offloaded', hostId: null });
    await compute.close();
  });

  it('removes the shelve snapshot with the instance when a shelved or offloaded instance is deleted', async () => {
    const cloud = await createFakeCloud({ core: { engine: { shelvedOffloadTimeMs: -1 } } });
    const { compute } = cloud;
    const [a, b] = await compute.create(cloud.request({ count: 2 }));
    const imagesBefore = (await compute.images.list()).length;
    const shelved = await compute.shelve(a!.id);
    const offloaded = await compute.shelveOffload((await compute.shelve(b!.id)).id);
    expect([shelved.vmState, offloaded.vmState]).toEqual(['shelved', 'shelved_offloaded']);
    expect((await compute.images.list()).length).toBe(imagesBefore + 2);
    for (const i of [shelved, offloaded]) {
      await compute.delete(i.id);
      expect(await compute.images.get(i.shelved!.imageId)).toBeUndefined();
    }
    expect((await compute.images.list()).length).toBe(imagesBefore);
    expect(await compute.images.get('cirros')).toBeDefined(); // the image they booted from stays
    await compute.close();
  });

  it('refuses a shelve where the driver cannot snapshot, before any state changes', async () => {
    const cloud = await createFakeCloud({ hosts: 1, driver: { capabilities: { snapshot: false } } });
    const [vm] = await cloud.compute.create(cloud.request());
    const e = await cloud.compute.shelve(vm!.id).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CapabilityUnsupportedError);
    expect((e as CapabilityUnsupportedError).details).toMatchObject({
      capability: 'snapshot',
      driver: 'fake',
    });
    expect(await cloud.compute.get(vm!.id)).toMatchObject({ vmState: 'active', taskState: null });
    await cloud.compute.close();
  });

  it('leaves an offloaded instance shelved when its unshelve finds no host, holding nothing', async () => {
    const cloud = await createFakeCloud({ hosts: 1 });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.shelve(vm!.id);
    drivers[0]!.failNext('spawn');
    await expect(compute.unshelve(vm!.id)).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    const after = await compute.get(vm!.id);
    expect(after).toMatchObject({ vmState: 'shelved_offloaded', hostId: null, taskState: null });
    expect(after.shelved).toBeTruthy();
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    expect(drivers[0]!.hasGuest(vm!.id)).toBe(false);
    // the snapshot is still there for the next try
    expect(await compute.images.get(after.shelved!.imageId)).toBeDefined();
    expect((await compute.unshelve(vm!.id)).vmState).toBe('active');
    await compute.close();
  });
});

describe('rescue and unrescue', () => {
  it('boots the rescue image with the original disk beside it, then the own disk again', async () => {
    const cloud = await createFakeCloud({ hosts: 1 });
    const { compute, drivers } = cloud;
    await compute.images.register(
      { id: 'rescue-img', name: 'rescue', diskFormat: 'raw', sha256: 'c'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array([3]) },
    );
    const [vm] = await compute.create(cloud.request());
    const rescued = await compute.rescue(vm!.id, { imageId: 'rescue-img' });
    expect(rescued).toMatchObject({ vmState: 'rescued', powerState: 'running', taskState: null });
    expect(drivers[0]!.guest(vm!.id)).toMatchObject({ rescueImageId: 'rescue-img', imageId: 'cirros' });
    await expect(compute.reboot(vm!.id)).rejects.toBeInstanceOf(InvalidStateError);
    const back = await compute.unrescue(vm!.id);
    expect(back).toMatchObject({ vmState: 'active', powerState: 'running' });
    expect(drivers[0]!.guest(vm!.id)?.rescueImageId).toBeUndefined();
    await expect(compute.rescue(vm!.id, { imageId: 'nope' })).rejects.toMatchObject({
      code: 'NLFS_NOT_FOUND',
      details: { field: 'imageId' },
    });
    await compute.close();
  });
});

describe('drivers without a move capability (as Docker and LXC)', () => {
  it('refuse resize, migrate, live migration and rescue with CapabilityUnsupportedError naming it, changing nothing', async () => {
    const cloud = await createFakeCloud({
      hosts: 2,
      driver: { capabilities: { coldMigration: false, liveMigration: false, rescue: false } },
    });
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const before = await compute.get(vm!.id);
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['coldMigration', () => compute.resize(vm!.id, 'm1.large')],
      ['coldMigration', () => compute.migrate(vm!.id)],
      ['liveMigration', () => compute.liveMigrate(vm!.id)],
      ['rescue', () => compute.rescue(vm!.id)],
    ];
    for (const [capability, run] of cases) {
      const e = await run().catch((x: unknown) => x);
      expect(e, capability).toBeInstanceOf(CapabilityUnsupportedError);
      expect((e as CapabilityUnsupportedError).details.capability).toBe(capability);
    }
    expect(await compute.get(vm!.id)).toEqual(before);
    expect((await compute.listActions(vm!.id)).map((a) => a.action)).toEqual(['create']);
    expect(await compute.migrations.list()).toEqual([]);
    await compute.close();
  });
});
