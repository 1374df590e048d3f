import { describe, expect, it } from 'vitest';
import {
  CapabilityUnsupportedError,
  InvalidStateError,
  MigrationPreCheckError,
  NoValidHostError,
  QuotaExceededError,
} from '../errors.js';
import { createFakeCloud, type FakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

/** Claims of an instance as `host:VCPU` strings, sorted. */
async function claimsOf(cloud: FakeCloud, id: string): Promise<string[]> {
  const claims = await internalsOf(cloud.compute).claims.list({ instanceId: id });
  return claims.map((c) => `${c.hostId}:${c.resources.VCPU}`).sort();
}

async function usage(cloud: FakeCloud) {
  return (await internalsOf(cloud.compute).quota.usage('p1')).inUse;
}

describe('resize and cold migration', () => {
  it('resizes onto another host, holds claims on both and the bigger quota, then confirms', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    expect(vm!.hostId).toBe('host-0');
    const resized = await compute.resize(id, 'm1.large');
    expect(resized).toMatchObject({
      vmState: 'resized',
      taskState: null,
      hostId: 'host-1',
      powerState: 'running',
    });
    expect(resized.flavor.id).toBe('m1.large');
    expect(resized.move).toMatchObject({ sourceHostId: 'host-0', destHostId: 'host-1', powerOn: true });
    // the guest runs on the destination with the new flavor; the source keeps a powered-off copy
    expect(drivers[1]!.guest(id)).toMatchObject({ vcpus: 8, ramMb: 16_384, powerState: 'running' });
    expect(drivers[0]!.hasGuest(id)).toBe(false);
    expect(drivers[0]!.hasKeptCopy(id)).toBe(true);
    expect(await claimsOf(cloud, id)).toEqual(['host-0:1', 'host-1:8']);
    expect(cloud.scheduler.usage('host-0').VCPU).toBe(1);
    expect(cloud.scheduler.usage('host-1').VCPU).toBe(8);
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 8, ramMb: 16_384 });
    // a reconciliation pass takes neither claim nor the kept copy for a leftover
    const report = await compute.reconcile();
    expect(report.releasedClaims).toEqual([]);
    expect(report.orphans).toEqual([]);
    // other actions wait for the confirm or revert
    await expect(compute.powerOff(id)).rejects.toBeInstanceOf(InvalidStateError);
    const confirmed = await compute.confirmResize(id);
    expect(confirmed).toMatchObject({ vmState: 'active', taskState: null, hostId: 'host-1', move: null });
    expect(drivers[0]!.hasKeptCopy(id)).toBe(false);
    expect(await claimsOf(cloud, id)).toEqual(['host-1:8']);
    expect(cloud.scheduler.usage('host-0').VCPU ?? 0).toBe(0);
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 8, ramMb: 16_384 });
    const [migration] = await compute.migrations.list({ instanceId: id });
    expect(migration).toMatchObject({
      kind: 'resize',
      status: 'confirmed',
      sourceHostId: 'host-0',
      destHostId: 'host-1',
      oldFlavorId: 'm1.small',
      newFlavorId: 'm1.large',
    });
    expect((await compute.listActions(id)).map((a) => `${a.action}:${a.result}`)).toEqual([
      'create:success',
      'resize:success',
      'confirmResize:success',
    ]);
    await compute.close();
  });

  it('reverts: the source copy comes back with the old flavor, the destination guest, claim and extra quota go', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    await compute.resize(id, 'm1.large');
    const reverted = await compute.revertResize(id);
    expect(reverted).toMatchObject({
      vmState: 'active',
      hostId: 'host-0',
      move: null,
      powerState: 'running',
    });
    expect(reverted.flavor.id).toBe('m1.small');
    expect(drivers[0]!.guest(id)).toMatchObject({ vcpus: 1, powerState: 'running' });
    expect(drivers[1]!.hasGuest(id)).toBe(false);
    expect(await claimsOf(cloud, id)).toEqual(['host-0:1']);
    expect(cloud.scheduler.usage('host-1').VCPU ?? 0).toBe(0);
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 1, ramMb: 2048 });
    expect((await compute.migrations.list({ instanceId: id }))[0]?.status).toBe('reverted');
    await compute.close();
  });

  it('counts the bigger flavor while a downsize waits, and the new one only once confirmed', async () => {
    const cloud = await createFakeCloud();
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request({ flavorId: 'm1.large' }));
    await internalsOf(compute).flavors.add({
      id: 'm1.medium',
      name: 'm1.medium',
      vcpus: 2,
      ramMb: 4096,
      diskGb: 80,
      resources: {},
      extraSpecs: {},
    });
    await compute.resize(vm!.id, 'm1.medium');
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 8, ramMb: 16_384 });
    await compute.confirmResize(vm!.id);
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 2, ramMb: 4096 });
    await compute.close();
  });

  it('resizes on its own host only when allowed and no other fits, holding both claims there', async () => {
    const refused = await createFakeCloud({ hosts: 1 });
    const [a] = await refused.compute.create(refused.request());
    await expect(refused.compute.resize(a!.id, 'm1.large')).rejects.toBeInstanceOf(NoValidHostError);
    expect(await refused.compute.get(a!.id)).toMatchObject({ vmState: 'active', taskState: null });
    expect((await refused.compute.get(a!.id)).move ?? null).toBeNull();
    expect(await claimsOf(refused, a!.id)).toEqual(['host-0:1']);
    expect(await usage(refused)).toEqual({ instances: 1, cores: 1, ramMb: 2048 });
    await refused.compute.close();

    const cloud = await createFakeCloud({ hosts: 1, core: { engine: { allowResizeToSameHost: true } } });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const resized = await compute.resize(vm!.id, 'm1.large');
    expect(resized).toMatchObject({ vmState: 'resized', hostId: 'host-0' });
    expect(await claimsOf(cloud, vm!.id)).toEqual(['host-0:1', 'host-0:8']);
    expect(cloud.scheduler.usage('host-0').VCPU).toBe(9);
    // two copies on one host: the new guest and the one kept for a revert
    expect(drivers[0]!.guest(vm!.id)).toMatchObject({ vcpus: 8 });
    expect(drivers[0]!.hasKeptCopy(vm!.id)).toBe(true);
    const reverted = await compute.revertResize(vm!.id);
    expect(reverted.flavor.id).toBe('m1.small');
    expect(drivers[0]!.guest(vm!.id)).toMatchObject({ vcpus: 1 });
    expect(drivers[0]!.hasKeptCopy(vm!.id)).toBe(false);
    expect(await claimsOf(cloud, vm!.id)).toEqual(['host-0:1']);
    expect(cloud.scheduler.usage('host-0').VCPU).toBe(1);
    await compute.close();
  });

  it('cold-migrates a stopped instance to a named host; it stays powered off after the confirm', async () => {
    const cloud = await createFakeCloud({ hosts: 3 });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.powerOff(vm!.id);
    const moved = await compute.migrate(vm!.id, { host: 'host-2' });
    expect(moved).toMatchObject({ vmState: 'resized', hostId: 'host-2', powerState: 'shutdown' });
    expect(moved.flavor.id).toBe('m1.small');
    expect(drivers[2]!.guest(vm!.id)?.powerState).toBe('shutdown');
    const done = await compute.confirmResize(vm!.id);
    expect(done).toMatchObject({ vmState: 'stopped', powerState: 'shutdown', hostId: 'host-2' });
    expect((await compute.migrations.list({ instanceId: vm!.id, status: 'confirmed' }))[0]?.kind).toBe(
      'cold',
    );
    await expect(compute.migrate(vm!.id, { host: 'host-2' })).rejects.toBeInstanceOf(MigrationPreCheckError);
    await expect(compute.migrate(vm!.id, { host: 'nowhere' })).rejects.toMatchObject({
      code: 'NLFS_NOT_FOUND',
      details: { field: 'host' },
    });
    await compute.close();
  });

  it('refuses before any state change: same flavor, unknown flavor, a driver without the capability, over quota', async () => {
    const cloud = await createFakeCloud({
      hosts: 3,
      quota: { instances: 10, cores: 4, ramMb: 1_000_000 },
      driver: (i) => (i === 2 ? { capabilities: { coldMigration: false } } : {}),
    });
    const { compute } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const before = await compute.get(id);
    await expect(compute.resize(id, 'm1.small')).rejects.toBeInstanceOf(MigrationPreCheckError);
    await expect(compute.resize(id, 'nope')).rejects.toMatchObject({
      code: 'NLFS_NOT_FOUND',
      details: { field: 'flavorId' },
    });
    // 8 cores over a limit of 4: refused, the destination claim released
    await expect(compute.resize(id, 'm1.large')).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await claimsOf(cloud, id)).toEqual(['host-0:1']);
    // host-2's driver cannot: a named move there is refused naming the capability
    const e = await compute.migrate(id, { host: 'host-2' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CapabilityUnsupportedError);
    expect((e as CapabilityUnsupportedError).details).toMatchObject({
      capability: 'coldMigration',
      hostId: 'host-2',
    });
    const after = await compute.get(id);
    expect({ ...after, revision: 0, updatedAt: 0 }).toEqual({ ...before, revision: 0, updatedAt: 0 });
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 1, ramMb: 2048 });
    await compute.close();
  });

  it('rolls a failed finish back: the guest runs on the source again, nothing is left on the destination', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    drivers[1]!.failNext('finishMigration');
    await expect(compute.resize(id, 'm1.large')).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    const after = await compute.get(id);
    expect(after).toMatchObject({
      vmState: 'active',
      taskState: null,
      hostId: 'host-0',
      move: null,
      powerState: 'running',
    });
    expect(after.fault?.message).toMatch(/injected finishMigration failure/);
    expect(after.flavor.id).toBe('m1.small');
    expect(drivers[0]!.guest(id)?.powerState).toBe('running');
    expect(drivers[0]!.hasKeptCopy(id)).toBe(false);
    expect(drivers[1]!.hasGuest(id)).toBe(false);
    expect(await claimsOf(cloud, id)).toEqual(['host-0:1']);
    expect(cloud.scheduler.usage('host-1').VCPU ?? 0).toBe(0);
    expect(await usage(cloud)).toEqual({ instances: 1, cores: 1, ramMb: 2048 });
    expect((await compute.migrations.list({ instanceId: id }))[0]?.status).toBe('error');
    expect((await compute.listActions(id)).at(-1)).toMatchObject({ action: 'resize', result: 'error' });
    await compute.close();
  });

  it('deletes a resized instance: both copies, both claims and its quota go', async () => {
    const cloud = await createFakeCloud();
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.resize(vm!.id, 'm1.large');
    await compute.delete(vm!.id);
    expect(drivers[0]!.hasKeptCopy(vm!.id) || drivers[0]!.hasGuest(vm!.id)).toBe(false);
    expect(drivers[1]!.hasGuest(vm!.id)).toBe(false);
    expect(await internalsOf(compute).claims.list()).toEqual([]);
    expect(await usage(cloud)).toEqual({ instances: 0, cores: 0, ramMb: 0 });
    await compute.close();
  });

  it('confirms by itself once the confirm window passed (Nova: resize_confirm_window)', async () => {
    let now = 1_000_000;
    const cloud = await createFakeCloud({
      core: { clock: { now: () => now }, engine: { resizeConfirmWindowMs: 60_000 } },
    });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    await compute.resize(vm!.id, 'm1.large');
    now += 59_000;
    expect((await compute.reconcile()).confirmedResizes).toEqual([]);
    expect((await compute.get(vm!.id)).vmState).toBe('resized');
    now += 2_000;
    expect((await compute.reconcile()).confirmedResizes).toEqual([vm!.id]);
    expect(await compute.get(vm!.id)).toMatchObject({ vmState: 'active', move: null });
    expect(drivers[0]!.hasKeptCopy(vm!.id)).toBe(false);
    await compute.close();
  });
});
