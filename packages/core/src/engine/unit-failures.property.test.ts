import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LoggedEvent, StoreWrite, UnitOfWork } from '../ports/unit-of-work.js';
import { memoryUnitStores } from '../store/memory-unit-of-work.js';
import { createFakeCloud } from '../testing/engine-fixture.js';
import { internalsOf } from '../testing/internals.js';

/** A unit of work that fails its commits number `failAt` (counted from 1) with a store error. */
class FailingUnit implements UnitOfWork {
  commits = 0;
  failAt = new Set<number>();
  constructor(private readonly inner: UnitOfWork) {}
  async commit(writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]> {
    this.commits++;
    if (this.failAt.has(this.commits)) throw new Error(`injected store failure at commit ${this.commits}`);
    return this.inner.commit(writes);
  }
}

const op = fc.constantFrom('create', 'create2', 'delete', 'reboot', 'stop', 'start', 'pause', 'unpause');

describe('a store failure at any write of admission, build, action or delete', () => {
  it('leaves nothing behind once the engine is asked again and reconciles', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 4 }),
        async (ops, failures) => {
          const { unit: memoryUnit, ...stores } = memoryUnitStores();
          const unit = new FailingUnit(memoryUnit);
          const cloud = await createFakeCloud({
            hosts: 2,
            driver: { vcpus: 4, ramMb: 16_384 },
            core: {
              stores: { ...stores, unit },
              engine: { reconcileIntervalMs: 0 },
            },
          });
          const { compute, request } = cloud;
          for (const f of failures) unit.failAt.add(f);
          try {
            for (const name of ops) {
              const all = await compute.list();
              const pick = all[all.length - 1];
              try {
                if (name === 'create') await compute.create(request());
                else if (name === 'create2') await compute.create(request({ count: 2 }));
                else if (!pick) continue;
                else if (name === 'delete') await compute.delete(pick.id);
                else if (name === 'reboot') await compute.reboot(pick.id, 'hard');
                else if (name === 'stop') await compute.powerOff(pick.id);
                else if (name === 'start') await compute.powerOn(pick.id);
                else if (name === 'pause') await compute.pause(pick.id);
                else await compute.unpause(pick.id);
              } catch {
                // refused actions and injected failures are expected; what they leave is checked below
              }
            }
            // whatever failed, quota counts exactly the instances the store holds, none reserved
            const held = await compute.list();
            const before = await internalsOf(compute).quota.usage('p1');
            expect(before.inUse.instances).toBe(held.length);
            expect(before.reserved.instances).toBe(0);
            // the store works again: reconciliation heals, deletes finish
            unit.failAt.clear();
            await compute.reconcile('startup');
            for (const i of await compute.list()) await compute.delete(i.id);
            await compute.reconcile('startup');
            const deps = internalsOf(compute);
            expect(await compute.list()).toEqual([]);
            expect(await deps.claims.list()).toEqual([]);
            expect(await deps.actions.listPending()).toEqual([]);
            const usage = await deps.quota.usage('p1');
            expect(usage.inUse).toEqual({ instances: 0, cores: 0, ramMb: 0 });
            expect(usage.reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
            for (const d of cloud.drivers) expect(await d.listInstances()).toEqual([]);
          } finally {
            await compute.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
