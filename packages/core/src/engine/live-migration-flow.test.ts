import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { InvalidStateError, MigrationPreCheckError } from '../errors.js';
import type { MigrationRecord } from '../model/migration.js';
import { createFakeCloud, type FakeCloud } from '../testing/engine-fixture.js';
import { FakeDriver } from '../testing/fake-driver.js';
import { internalsOf } from '../testing/internals.js';
import type { InstanceEvent } from './events.js';

/** The first migration event of `id` whose record passes `pick` (subscribed before the call that causes it). */
function migrationEvent(cloud: FakeCloud, id: string, pick: (m: MigrationRecord) => boolean) {
  return firstValueFrom(
    cloud.compute.events$.pipe(
      filter(
        (e): e is Extract<InstanceEvent, { type: 'instance.migration' }> =>
          e.type === 'instance.migration' && e.instanceId === id && pick(e.migration),
      ),
    ),
  );
}

async function claimHosts(cloud: FakeCloud, id: string): Promise<string[]> {
  return (await internalsOf(cloud.compute).claims.list({ instanceId: id })).map((c) => c.hostId).sort();
}

describe('live migration', () => {
  it('moves a running guest to the scheduler pick, holding claims on both hosts while it runs, with progress events', async () => {
    const cloud = await createFakeCloud({
      driver: { liveMigration: { convergeAfterMs: 'never', tickMs: 5 } },
    });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const running = migrationEvent(cloud, id, (m) => m.status === 'running');
    const progressed = migrationEvent(cloud, id, (m) => m.progress !== null && m.status === 'running');
    const moving = compute.liveMigrate(id);
    await running;
    expect(await compute.get(id)).toMatchObject({
      vmState: 'active',
      taskState: 'migrating',
      hostId: 'host-0',
    });
    expect(await claimHosts(cloud, id)).toEqual(['host-0', 'host-1']);
    const p = (await progressed).migration.progress!;
    expect(p.phase).toBe('precopy');
    expect(p.dataRemainingBytes).toBeGreaterThan(0);
    expect(drivers[0]!.runningMigrations).toEqual([id]);
    // never converges on its own: forced to complete (post-copy)
    await compute.forceCompleteMigration(id);
    const moved = await moving;
    expect(moved).toMatchObject({
      vmState: 'active',
      taskState: null,
      hostId: 'host-1',
      powerState: 'running',
    });
    expect(drivers[1]!.guest(id)?.powerState).toBe('running');
    expect(drivers[0]!.hasGuest(id)).toBe(false);
    expect(await claimHosts(cloud, id)).toEqual(['host-1']);
    expect(cloud.scheduler.usage('host-0').VCPU ?? 0).toBe(0);
    const [record] = await compute.migrations.list({ instanceId: id, kind: 'live' });
    expect(record).toMatchObject({ status: 'completed', sourceHostId: 'host-0', destHostId: 'host-1' });
    expect(record!.progress).toMatchObject({ phase: 'postcopy', dataRemainingBytes: 0 });
    expect(record!.progress!.downtimeMs).toBeDefined();
    expect((await compute.listActions(id)).at(-1)).toMatchObject({
      action: 'live-migration',
      result: 'success',
    });
    await compute.close();
  });

  it('aborts: the guest keeps running on the source, the destination claim goes, the record says cancelled', async () => {
    const cloud = await createFakeCloud({ driver: { liveMigration: { convergeAfterMs: 'never' } } });
    const { compute, drivers } = cloud;
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const running = migrationEvent(cloud, id, (m) => m.status === 'running');
    const moving = compute.liveMigrate(id, { host: 'host-1' });
    await running;
    await compute.abortMigration(id);
    await expect(moving).rejects.toMatchObject({ code: 'NLFS_DRIVER_ERROR' });
    expect(await compute.get(id)).toMatchObject({ vmState: 'active', taskState: null, hostId: 'host-0' });
    expect(drivers[0]!.guest(id)?.powerState).toBe('running');
    expect(drivers[1]!.hasGuest(id)).toBe(false);
    expect(await claimHosts(cloud, id)).toEqual(['host-0']);
    expect((await compute.migrations.list({ instanceId: id }))[0]?.status).toBe('cancelled');
    await expect(compute.abortMigration(id)).rejects.toBeInstanceOf(InvalidStateError);
    await compute.close();
  });

  it('never runs forever: past the completion timeout the engine forces it (post-copy, or more downtime)', async () => {
    for (const allowPostCopy of [true, false]) {
      const cloud = await createFakeCloud({
        driver: { liveMigration: { convergeAfterMs: 'never' } },
        core: { engine: { liveMigrationCompletionTimeoutMs: 50 } },
      });
      const [vm] = await cloud.compute.create(cloud.request());
      const moved = await cloud.compute.liveMigrate(vm!.id, { allowPostCopy });
      expect(moved.hostId).toBe('host-1');
      const [record] = await cloud.compute.migrations.list({ instanceId: vm!.id });
      expect(record?.status).toBe('completed');
      expect(record?.progress?.phase).toBe(allowPostCopy ? 'postcopy' : 'precopy');
      await cloud.compute.close();
    }
  });

  it("refuses early with the reason the caller sees: the source's check, another driver kind, its own host", async () => {
    class OtherKind extends FakeDriver {
      override readonly kind = 'other';
    }
    const cloud = await createFakeCloud({ hosts: 2 });
    const { compute, drivers } = cloud;
    await compute.addHost({ id: 'host-x', driver: new OtherKind({ hostname: 'x' }) });
    const [vm] = await compute.create(cloud.request());
    const id = vm!.id;
    const before = await compute.get(id);
    drivers[0]!.failNext('checkLiveMigration', { message: 'CPU of the destination lacks avx512' });
    const refused = await compute.liveMigrate(id, { host: 'host-1' }).catch((x: unknown) => x);
    expect(refused).toBeInstanceOf(MigrationPreCheckError);
    expect((refused as Error).message).toMatch(/avx512/);
    expect(await claimHosts(cloud, id)).toEqual(['host-0']);
    expect((await compute.migrations.list({ instanceId: id }))[0]?.status).toBe('error');
    const other = await compute.liveMigrate(id, { host: 'host-x' }).catch((x: unknown) => x);
    expect(other).toBeInstanceOf(MigrationPreCheckError);
    expect((other as MigrationPreCheckError).details.reason).toMatch(/other/);
    await expect(compute.liveMigrate(id, { host: 'host-0' })).rejects.toBeInstanceOf(MigrationPreCheckError);
    const after = await compute.get(id);
    expect(after).toMatchObject({ vmState: 'active', taskState: null, hostId: 'host-0' });
    expect(after.revision).toBeGreaterThan(before.revision); // the refused check ran as an action (recorded)
    expect((await compute.listActions(id)).at(-1)).toMatchObject({
      action: 'live-migration',
      result: 'error',
    });
    await compute.close();
  });
});
