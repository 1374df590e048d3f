import type fastCheck from 'fast-check';
import type { Arbitrary } from 'fast-check';
import { expect } from 'vitest';
import { quotaDeltasOf } from '../engine/engine-context.js';
import { isNovaError } from '../errors.js';
import { flavorResources } from '../model/flavor.js';
import type { Instance } from '../model/instance.js';
import type { FakeCloud } from './engine-fixture.js';
import type { FakeOperation } from './fake-driver.js';
import { internalsOf } from './internals.js';

/** One step of a random sequence of moves over a {@link FakeCloud}. */
export type MoveStep =
  | { op: 'create'; large: boolean }
  | { op: 'resize'; pick: number; large: boolean }
  | { op: 'migrate' | 'confirm' | 'revert' | 'delete' | 'stop'; pick: number }
  | { op: 'fail'; what: FakeOperation; host: number };

/**
 * Random sequences of creates, resizes, cold migrations, confirms, reverts, deletes, stops and
 * injected driver failures, for a property test (pass fast-check: this module does not depend on it).
 */
export function moveSteps(fc: typeof fastCheck, options: { maxLength?: number } = {}): Arbitrary<MoveStep[]> {
  const step: Arbitrary<MoveStep> = fc.oneof(
    { arbitrary: fc.record({ op: fc.constant('create' as const), large: fc.boolean() }), weight: 2 },
    {
      arbitrary: fc.record({ op: fc.constant('resize' as const), pick: fc.nat(), large: fc.boolean() }),
      weight: 2,
    },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constantFrom('migrate', 'confirm', 'revert', 'delete', 'stop') as Arbitrary<
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
  return fc.array(step, { minLength: 5, maxLength: options.maxLength ?? 30, size: 'max' });
}

/** Refusals a step may meet (anything else fails the property). */
const REFUSALS = [
  'NLFS_QUOTA_EXCEEDED',
  'NLFS_INVALID_STATE',
  'NLFS_NO_VALID_HOST',
  'NLFS_MIGRATION_PRECHECK',
  'NLFS_DRIVER_ERROR',
] as const;

/**
 * Runs one step on a cloud of three FAKE hosts (`m1.small` / `m1.large`, project `p1`); counts
 * the moves that succeeded in `succeeded`. Confirm and revert mostly pick a resized instance.
 */
export async function runMoveStep(
  cloud: FakeCloud,
  step: MoveStep,
  succeeded: Record<string, number>,
): Promise<void> {
  const { compute, drivers } = cloud;
  const pick = async (n: number, op: string): Promise<Instance | undefined> => {
    const all = await compute.list();
    const resized = all.filter((i) => i.vmState === 'resized');
    const from = (op === 'confirm' || op === 'revert') && resized.length && n % 4 !== 0 ? resized : all;
    return from.length ? from[n % from.length] : undefined;
  };
  try {
    if (step.op === 'create') {
      await compute.create(cloud.request({ flavorId: step.large ? 'm1.large' : 'm1.small' }));
    } else if (step.op === 'fail') {
      drivers[step.host]!.failNext(step.what, { times: 1 });
    } else {
      const i = await pick(step.pick, step.op);
      if (!i) return;
      const run = {
        resize: () => compute.resize(i.id, step.op === 'resize' && step.large ? 'm1.large' : 'm1.small'),
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
    if (!REFUSALS.some((code) => isNovaError(e, code))) throw e;
  }
}

/**
 * The invariants of moves whenever none is in flight: no task left; an instance with a move holds
 * exactly its source claim (old flavor, source host) and its destination claim (new flavor,
 * destination host), any other exactly one claim on its host; the scheduler's usage on every host
 * is the sum of those; every guest (or kept copy) on a host belongs to an instance there or to the
 * source of its move; quota in use is what the instances count for (the bigger flavor during a
 * move), nothing reserved.
 */
export async function checkMoveInvariants(cloud: FakeCloud): Promise<void> {
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
      expect(mine).toHaveLength(2);
      expect(mine.find((c) => c.id === i.move!.sourceClaimId)).toMatchObject({
        hostId: i.move.sourceHostId,
        resources: flavorResources(i.move.oldFlavor),
      });
      expect(mine.find((c) => c.id === i.move!.destClaimId)).toMatchObject({
        hostId: i.move.destHostId,
        resources: flavorResources(i.move.newFlavor),
      });
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

/** After a sequence: deleting everything leaves no claim, no quota, no guest, no kept copy, no usage. */
export async function checkMovesCleanedUp(cloud: FakeCloud): Promise<void> {
  const { compute, drivers } = cloud;
  for (const d of drivers) d.clearFailures();
  for (const i of await compute.list()) await compute.delete(i.id);
  expect(await internalsOf(compute).claims.list()).toHaveLength(0);
  expect((await internalsOf(compute).quota.usage('p1')).inUse).toEqual({ instances: 0, cores: 0, ramMb: 0 });
  for (let h = 0; h < drivers.length; h++) {
    expect((await drivers[h]!.listInstances()).length).toBe(0);
    expect(cloud.scheduler.usage(`host-${h}`).VCPU ?? 0).toBe(0);
  }
}
