import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNovaError } from '../errors.js';
import { flavorResources } from '../model/flavor.js';
import type { Instance } from '../model/instance.js';
import { createFakeCloud, type FakeCloud } from '../testing/engine-fixture.js';
import type { FakeOperation } from '../testing/fake-driver.js';
import { internalsOf } from '../testing/internals.js';
import { quotaDeltasOf } from './engine-context.js';

type Step =
  | { op: 'create'; large: boolean }
  | { op: 'resize'; pick: number; large: boolean }
  | { op: 'migrate' | 'confirm' | 'revert' | 'delete' | 'stop'; pick: number }
  | { op: 'fail'; what: FakeOperation; host: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('create' as const), large: fc.boolean() }), weight: 2 },
  {
    arbitrary: fc.record({ op: fc.constant('resize' as const), pick: fc.nat(), large: fc.boolean() }),
    weight: 2,
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constantFrom('migrate', 'confirm', 'revert', 'delete', 'stop') as fc.Arbitrary<
        'migrate' | 'confirm' | 'revert' | 'delete' | 'stop'
      >,
      pick: fc.nat(),
    }),
  },
  fc.record({
    op: fc.constant('fail' as const),
    what: fc.constantFrom<FakeOperation>(
      'prepareColdMigrationTarget',
      'migrateDisksAndPowerOff',
      'finishMigration',
      'confirmMigration',
      'finishRevertMigration',
      'destroy',
    ),
    host: fc.nat({ max: 2 }),
  }),
);

/** Claims and quota are right on every host after every step; no guest or copy is left over. */
async function checkInvariants(cloud: FakeCloud): Promise<void> {
  const { compute, drivers } = cloud;
  const instances = await compute.list();
  const claims = await internalsOf(compute).claims.list();
  const byId = new Map(instances.map((i) => [i.id, i]));
  const expected = new Map<string, number>();
  const want = (host: string, vcpus: number) => expected.set(host, (expected.get(host) ?? 0) + vcpus);
  for (const i of instances) {
    expect(i.taskState, `${i.id} stuck in ${i.taskState}`).toBeNull();
    const mine = claims.filter((c) => c.instanceId === i.id);
    if (i.move) {
      expect(i.vmState === 'resized' || i.vmState === 'error', i.vmState).toBe(true);
      const src = mine.find((c) => c.id === i.move!.sourceClaimId);
      const dst = mine.find((c) => c.id === i.move!.destClaimId);
      expect(mine).toHaveLength(2);
      expect(src).toMatchObject({
        hostId: i.move.sourceHostId,
        resources: flavorResources(i.move.oldFlavor),
      });
      expect(dst).toMatchObject({ hostId: i.move.destHostId, resources: flavorResources(i.move.newFlavor) });
      want(i.move.sourceHostId, i.move.oldFlavor.vcpus);
      want(i.move.destHostId, i.move.newFlavor.vcpus);
    } else if (i.hostId !== null) {
      expect(mine.map((c) => [c.hostId, c.resources.VCPU])).toEqual([[i.hostId, i.flavor.vcpus]]);
      want(i.hostId, i.flavor.vcpus);
    } else {
      expect(mine).toEqual([]);
    }
  }
  for (const c of claims) expect(byId.has(c.instanceId), `claim ${c.id} of a gone instance`).toBe(true);
  for (let h = 0; h < drivers.length; h++) {
    const host = `host-${h}`;
    expect(cloud.scheduler.usage(host).VCPU ?? 0, `VCPU used on ${host}`).toBe(expected.get(host) ?? 0);
    for (const g of await drivers[h]!.listInstances()) {
      const owner = byId.get(g.instanceId);
      expect(owner, `guest ${g.instanceId} on ${host} without an instance`).toBeDefined();
      const here = owner!.hostId === host || owner!.move?.sourceHostId === host;
      expect(here, `guest of ${g.instanceId} on ${host}`).toBe(true);
    }
  }
  const usage = await internalsOf(compute).quota.usage('p1');
  const sum = instances.map((i) => quotaDeltasOf(i));
  expect(usage.reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
  expect(usage.inUse).toEqual({
    instances: instances.length,
    cores: sum.reduce((s, d) => s + d.cores, 0),
    ramMb: sum.reduce((s, d) => s + d.ramMb, 0),
  });
}

describe('resize and cold migration properties (fast-check)', () => {
  it('claims and quota are right on both hosts at every step of any resize/migrate/confirm/revert/delete sequence', async () => {
    const succeeded: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 5, maxLength: 30, size: 'max' }), async (steps) => {
        const cloud = await createFakeCloud({
          hosts: 3,
          quota: { instances: 8, cores: 40, ramMb: 1_000_000 },
          core: { engine: { allowResizeToSameHost: true } },
        });
        const { compute, drivers } = cloud;
        // confirm and revert mostly pick a resized instance (else they would rarely meet one)
        const pick = async (n: number, op: string): Promise<Instance | undefined> => {
          const all = await compute.list();
          const resized = all.filter((i) => i.vmState === 'resized');
          const from = (op === 'confirm' || op === 'revert') && resized.length && n % 4 !== 0 ? resized : all;
          return from.length ? from[n % from.length] : undefined;
        };
        for (const step of steps) {
          try {
            if (step.op === 'create') {
              await compute.create(cloud.request({ flavorId: step.large ? 'm1.large' : 'm1.small' }));
            } else if (step.op === 'fail') {
              drivers[step.host]!.failNext(step.what, { times: 1 });
            } else {
              const i = await pick(step.pick, step.op);
              if (!i) continue;
              const run = {
                resize: () =>
                  compute.resize(i.id, step.op === 'resize' && step.large ? 'm1.large' : 'm1.small'),
                migrate: () => compute.migrate(i.id),
                confirm: () => compute.confirmResize(i.id),
                revert: () => compute.revertResize(i.id),
                delete: () => compute.delete(i.id),
                stop: () => compute.powerOff(i.id),
              }[step.op];
              await run();
              succeeded[step.op] = (succeeded[step.op] ?? 0) + 1;
            }
          } catch (e) {
            const expectedRefusal = [
              'NLFS_QUOTA_EXCEEDED',
              'NLFS_INVALID_STATE',
              'NLFS_NO_VALID_HOST',
              'NLFS_MIGRATION_PRECHECK',
              'NLFS_DRIVER_ERROR',
            ].some((code) => isNovaError(e, code as never));
            if (!expectedRefusal) throw e;
          }
          await checkInvariants(cloud);
        }
        for (const d of drivers) d.clearFailures();
        for (const i of await compute.list()) await compute.delete(i.id);
        expect(await internalsOf(compute).claims.list()).toHaveLength(0);
        expect((await internalsOf(compute).quota.usage('p1')).inUse).toEqual({
          instances: 0,
          cores: 0,
          ramMb: 0,
        });
        for (let h = 0; h < drivers.length; h++) {
          expect(drivers[h]!.guestCount).toBe(0);
          expect(drivers[h]!.hasKeptCopy('x')).toBe(false);
          expect((await drivers[h]!.listInstances()).length).toBe(0);
          expect(cloud.scheduler.usage(`host-${h}`).VCPU ?? 0).toBe(0);
        }
        await compute.close();
      }),
      {
        numRuns: 120,
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}),
      },
    );
    // the sequences did move instances (not only refusals)
    for (const op of ['resize', 'migrate', 'confirm', 'revert', 'delete']) {
      expect(succeeded[op] ?? 0, `${op} succeeded`).toBeGreaterThan(10);
    }
  }, 180_000);
});
