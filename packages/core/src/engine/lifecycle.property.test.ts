import fc from 'fast-check';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { isNovaError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import { isActionAllowed } from '../model/transitions.js';
import { createFakeCloud, type FakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

type Step =
  | { op: 'create'; count: number; large: boolean }
  | { op: 'delete' | 'start' | 'stop' | 'reboot' | 'pause' | 'unpause' | 'suspend' | 'resume'; pick: number }
  | { op: 'fail'; what: 'spawn' | 'powerOff' | 'destroy' | 'pause'; host: number }
  | { op: 'crash'; pick: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant('create' as const),
    count: fc.integer({ min: 1, max: 3 }),
    large: fc.boolean(),
  }),
  fc.record({
    op: fc.constantFrom(
      'delete',
      'start',
      'stop',
      'reboot',
      'pause',
      'unpause',
      'suspend',
      'resume',
    ) as fc.Arbitrary<'delete' | 'start' | 'stop' | 'reboot' | 'pause' | 'unpause' | 'suspend' | 'resume'>,
    pick: fc.nat(),
  }),
  fc.record({
    op: fc.constant('fail' as const),
    what: fc.constantFrom('spawn', 'powerOff', 'destroy', 'pause') as fc.Arbitrary<
      'spawn' | 'powerOff' | 'destroy' | 'pause'
    >,
    host: fc.nat({ max: 2 }),
  }),
  fc.record({ op: fc.constant('crash' as const), pick: fc.nat() }),
);

/** Checks the invariants that must hold whenever no operation is in flight. */
async function checkInvariants(cloud: FakeCloud): Promise<void> {
  const { compute, drivers } = cloud;
  const instances = await compute.list();
  const claims = await internalsOf(compute).claims.list();
  for (const i of instances) {
    expect(i.taskState, `${i.id} stuck in a task`).toBeNull();
    expect(['active', 'paused', 'suspended', 'stopped', 'error']).toContain(i.vmState);
    if (i.vmState === 'error' && i.hostId === null) {
      expect(claims.filter((c) => c.instanceId === i.id)).toHaveLength(0);
    }
    if (i.vmState !== 'error') {
      expect(i.hostId).not.toBeNull();
      expect(claims.filter((c) => c.instanceId === i.id && c.hostId === i.hostId)).toHaveLength(1);
    }
  }
  // no claim without a live instance on that host
  const byId = new Map(instances.map((i) => [i.id, i]));
  for (const c of claims) expect(byId.get(c.instanceId)?.hostId).toBe(c.hostId);
  // quota usage equals what exists
  const usage = await internalsOf(compute).quota.usage('p1');
  expect(usage.reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
  expect(usage.inUse.instances).toBe(instances.length);
  expect(usage.inUse.cores).toBe(instances.reduce((s, i) => s + i.flavor.vcpus, 0));
  // no guest on a host without its instance there
  for (const [h, d] of drivers.entries()) {
    for (const g of await d.listInstances()) expect(byId.get(g.instanceId)?.hostId).toBe(`host-${h}`);
  }
  // host usage never above capacity
  for (let h = 0; h < drivers.length; h++) {
    expect(cloud.scheduler.usage(`host-${h}`).VCPU ?? 0).toBeLessThanOrEqual(16);
  }
}

describe('lifecycle engine properties (fast-check)', () => {
  it('no sequence of actions leaves an illegal state or leaks a claim, a guest or quota', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
        const cloud = await createFakeCloud({
          hosts: 3,
          quota: { instances: 8, cores: 30, ramMb: 1_000_000 },
        });
        const { compute, drivers } = cloud;
        const pick = async (n: number): Promise<Instance | undefined> => {
          const all = await compute.list();
          return all.length ? all[n % all.length] : undefined;
        };
        for (const step of steps) {
          try {
            if (step.op === 'create') {
              await compute.create(
                cloud.request({ count: step.count, flavorId: step.large ? 'm1.large' : 'm1.small' }),
              );
            } else if (step.op === 'fail') {
              drivers[step.host]!.failNext(step.what, { times: 1 });
            } else if (step.op === 'crash') {
              const i = await pick(step.pick);
              if (i?.hostId) {
                const driver = drivers[Number(i.hostId.slice(5))]!;
                const guest = (await driver.listInstances()).find((g) => g.instanceId === i.id);
                // power sync applies the crash: wait for its state event when it changes a state
                const synced =
                  guest && guest.powerState !== 'shutdown' && i.taskState === null
                    ? firstValueFrom(
                        compute.events$.pipe(
                          filter((e) => e.type === 'instance.state' && e.instanceId === i.id),
                        ),
                      )
                    : undefined;
                driver.crash(i.id);
                await synced;
              }
            } else {
              const i = await pick(step.pick);
              if (!i) continue;
              const before = i;
              // an instance that never got a host (ERROR after NoValidHost) has nothing to act on
              const allowed =
                isActionAllowed(step.op, before) && (step.op === 'delete' || before.hostId !== null);
              const run = {
                delete: () => compute.delete(i.id),
                start: () => compute.powerOn(i.id),
                stop: () => compute.powerOff(i.id),
                reboot: () => compute.reboot(i.id, 'soft'),
                pause: () => compute.pause(i.id),
                unpause: () => compute.unpause(i.id),
                suspend: () => compute.suspend(i.id),
                resume: () => compute.resume(i.id),
              }[step.op];
              try {
                await run();
                expect(allowed, `${step.op} succeeded from ${before.vmState}`).toBe(true);
              } catch (e) {
                if (!allowed) expect(isNovaError(e, 'NLFS_INVALID_STATE')).toBe(true);
                else expect(isNovaError(e, 'NLFS_DRIVER_ERROR')).toBe(true);
              }
            }
          } catch (e) {
            if (!isNovaError(e, 'NLFS_QUOTA_EXCEEDED')) throw e;
          }
          await checkInvariants(cloud);
        }
        for (const d of drivers) d.clearFailures();
        for (const i of await compute.list()) await compute.delete(i.id);
        expect(await compute.list()).toHaveLength(0);
        expect(await internalsOf(compute).claims.list()).toHaveLength(0);
        const usage = await internalsOf(compute).quota.usage('p1');
        expect(usage.inUse).toEqual({ instances: 0, cores: 0, ramMb: 0 });
        for (let h = 0; h < drivers.length; h++) {
          expect(drivers[h]!.guestCount).toBe(0);
          expect(cloud.scheduler.usage(`host-${h}`).VCPU ?? 0).toBe(0);
        }
        await compute.close();
      }),
      {
        numRuns: 150,
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}),
      },
    );
  }, 120_000);
});
