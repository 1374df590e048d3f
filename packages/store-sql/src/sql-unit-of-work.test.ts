import {
  DuplicateError,
  type InstanceAction,
  type InstanceEvent,
  NotFoundError,
  RevisionConflictError,
} from '@nova-lfs/core';
import type { StoreWrite } from '@nova-lfs/core/ports';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { openPostgresStores, type SqlStores } from './open-stores.js';
import { freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';
import type { SqliteExecutor } from './sqlite-executor.js';

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

const action = (instanceId: string, id: string): InstanceAction => ({
  id,
  instanceId,
  action: 'create',
  requestId: `req-${id}`,
  userId: 'u',
  projectId: 'p',
  startedAt: 1,
  finishedAt: null,
  result: 'pending',
  fault: null,
});

const deleted = (instanceId: string, at = 5): InstanceEvent => ({ type: 'instance.deleted', instanceId, at });

async function withStores(
  dialect: 'sqlite' | 'postgres',
  fn: (s: SqlStores & { schema?: string }) => Promise<void>,
): Promise<void> {
  const s = await freshStores(dialect);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SQL unit of work on ${dialect}`, () => {
    it('removes at an expected revision only: a stale remove fails the unit and removes nothing', async () => {
      await withStores(dialect, async (s) => {
        const { unit, instances } = s.stores;
        const vm = buildTestInstance({ projectId: 'p' });
        await unit.commit([{ kind: 'instance.insert', instance: vm }]);
        const next = { ...vm, revision: 1, taskState: 'deleting' as const };
        await unit.commit([{ kind: 'instance.update', instance: next, expectedRevision: 0 }]);
        const stale = await unit
          .commit([
            { kind: 'instance.remove', id: vm.id, expectedRevision: 0 },
            { kind: 'event', event: deleted(vm.id) },
          ])
          .catch((e: unknown) => e);
        expect(stale).toBeInstanceOf(RevisionConflictError);
        expect(stale).toMatchObject({ details: { id: vm.id, expected: 0, actual: 1 } });
        expect((await instances.get(vm.id))?.revision).toBe(1);
        await unit.commit([{ kind: 'instance.remove', id: vm.id, expectedRevision: 1 }]);
        expect(await instances.get(vm.id)).toBeUndefined();
        const gone = await unit
          .commit([{ kind: 'instance.remove', id: vm.id, expectedRevision: 1 }])
          .catch((e: unknown) => e);
        expect(gone).toBeInstanceOf(NotFoundError);
        // without an expected revision, removing is idempotent
        await unit.commit([{ kind: 'instance.remove', id: vm.id }]);
      });
    });

    it('commits records, actions, group members and events together, with the events as logged', async () => {
      await withStores(dialect, async (s) => {
        const { unit, instances, actions, groups, events } = s.stores;
        await groups.add({ id: 'g', name: 'g', projectId: 'p', policy: 'anti-affinity', members: ['x'] });
        const vm = buildTestInstance({ projectId: 'p' });
        const created: InstanceEvent = { type: 'instance.created', instanceId: vm.id, at: 1, instance: vm };
        const logged = await unit.commit([
          { kind: 'instance.insert', instance: vm },
          { kind: 'action.start', action: action(vm.id, 'a1') },
          { kind: 'event', event: created },
          { kind: 'group.addMembers', groupId: 'g', instanceIds: [vm.id, 'x', vm.id] },
          { kind: 'event', event: deleted(vm.id, 2) },
        ]);
        expect(logged).toEqual([
          { seq: 1, event: created },
          { seq: 2, event: deleted(vm.id, 2) },
        ]);
        expect(await instances.get(vm.id)).toEqual(vm);
        expect((await actions.list(vm.id)).map((a) => a.id)).toEqual(['a1']);
        expect((await groups.get('g'))!.members).toEqual(['x', vm.id]);
        expect(await events.read(0, 10, { projectId: 'p' })).toEqual(logged);
        expect(await events.head()).toBe(2);

        const active = { ...vm, vmState: 'active' as const, taskState: null, revision: 1, updatedAt: 3 };
        const finished = { ...action(vm.id, 'a1'), result: 'success' as const, finishedAt: 3 };
        await unit.commit([
          { kind: 'instance.update', instance: active, expectedRevision: 0 },
          { kind: 'action.finish', action: finished },
          { kind: 'group.removeMember', groupId: 'g', instanceId: 'x' },
          { kind: 'group.removeMember', groupId: 'gone', instanceId: vm.id },
        ]);
        expect(await instances.get(vm.id)).toEqual(active);
        expect(await actions.list(vm.id)).toEqual([finished]);
        expect((await groups.get('g'))!.members).toEqual([vm.id]);
        // the store's remembered record is the unit's: an update at its revision goes through
        expect(await instances.update(vm.id, 1, { name: 'renamed' }, 4)).toMatchObject({
          revision: 2,
          name: 'renamed',
        });

        await unit.commit([
          { kind: 'instance.remove', id: vm.id },
          { kind: 'instance.remove', id: vm.id },
        ]);
        expect(await instances.get(vm.id)).toBeUndefined();
        expect(await unit.commit([])).toEqual([]);
      });
    });

    const failing: Array<
      [string, (vm: ReturnType<typeof buildTestInstance>) => StoreWrite, (e: unknown) => void]
    > = [
      [
        'a lost update',
        (vm) => ({ kind: 'instance.update', instance: { ...vm, revision: 8 }, expectedRevision: 7 }),
        (e) => {
          expect(e).toBeInstanceOf(RevisionConflictError);
          expect((e as RevisionConflictError).details).toMatchObject({
            kind: 'instance',
            expected: 7,
            actual: 1,
          });
        },
      ],
      [
        'an update of a missing instance',
        () => ({
          kind: 'instance.update',
          instance: buildTestInstance({ revision: 1 }),
          expectedRevision: 0,
        }),
        (e) => {
          expect(e).toBeInstanceOf(NotFoundError);
          expect((e as NotFoundError).details.kind).toBe('instance');
        },
      ],
      [
        'a duplicate instance',
        (vm) => ({ kind: 'instance.insert', instance: { ...vm, name: 'again' } }),
        (e) => {
          expect(e).toBeInstanceOf(DuplicateError);
          expect((e as DuplicateError).details.kind).toBe('instance');
        },
      ],
      [
        'a duplicate action',
        (vm) => ({ kind: 'action.start', action: action(vm.id, 'existing') }),
        (e) => {
          expect(e).toBeInstanceOf(DuplicateError);
          expect((e as DuplicateError).details).toEqual({ kind: 'action', id: 'existing' });
        },
      ],
      [
        'members for a missing group',
        (vm) => ({ kind: 'group.addMembers', groupId: 'no-such-group', instanceIds: [vm.id] }),
        (e) => {
          expect(e).toBeInstanceOf(NotFoundError);
          expect((e as NotFoundError).details).toEqual({ kind: 'serverGroup', id: 'no-such-group' });
        },
      ],
    ];
    for (const [what, last, check] of failing) {
      it(`leaves nothing of a unit whose last write fails: ${what}`, async () => {
        await withStores(dialect, async (s) => {
          const { unit, instances, actions, groups, events } = s.stores;
          await groups.add({ id: 'g', name: 'g', projectId: 'p', policy: 'affinity', members: [] });
          const existing = buildTestInstance({ projectId: 'p' });
          await instances.insert(existing);
          await actions.start(action(existing.id, 'existing'));
          const before = await events.head();
          const fresh = buildTestInstance({ projectId: 'p' });
          const moved = { ...existing, hostId: 'elsewhere', revision: 1 };
          const err = await unit
            .commit([
              { kind: 'instance.insert', instance: fresh },
              { kind: 'instance.update', instance: moved, expectedRevision: 0 },
              { kind: 'action.start', action: action(fresh.id, 'a-fresh') },
              { kind: 'group.addMembers', groupId: 'g', instanceIds: [fresh.id] },
              { kind: 'event', event: deleted(fresh.id) },
              last(existing),
            ])
            .catch((e: unknown) => e);
          check(err);
          expect(await instances.get(fresh.id)).toBeUndefined();
          expect(await instances.get(existing.id)).toEqual(existing);
          expect(await actions.list(fresh.id)).toEqual([]);
          expect((await groups.get('g'))!.members).toEqual([]);
          expect(await events.head()).toBe(before);
          expect(await events.read(0, 100)).toEqual([]);
          // and the stores carry on: the same writes without the failing one commit
          await unit.commit([
            { kind: 'instance.insert', instance: fresh },
            { kind: 'event', event: deleted(fresh.id) },
          ]);
          expect(await instances.get(fresh.id)).toEqual(fresh);
          expect((await events.read(0, 100)).map((e) => e.seq)).toEqual([1]);
        });
      });
    }

    it('lets exactly one of two concurrent units compare-and-set one instance', async () => {
      await withStores(dialect, async (s) => {
        const { unit, instances } = s.stores;
        const vm = buildTestInstance();
        await instances.insert(vm);
        for (let round = 0; round < 5; round++) {
          const current = (await instances.get(vm.id))!;
          const attempt = (host: string) =>
            unit.commit([
              {
                kind: 'instance.update',
                instance: { ...current, hostId: host, revision: current.revision + 1 },
                expectedRevision: current.revision,
              },
              { kind: 'event', event: deleted(vm.id, round) },
            ]);
          const results = await Promise.allSettled([attempt('a'), attempt('b')]);
          const won = results.filter((r) => r.status === 'fulfilled');
          const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
          expect(won).toHaveLength(1);
          expect(lost).toHaveLength(1);
          expect(lost[0]!.reason).toBeInstanceOf(RevisionConflictError);
          expect(lost[0]!.reason.details).toMatchObject({ id: vm.id, expected: current.revision });
          const stored = (await instances.get(vm.id))!;
          expect(stored.revision).toBe(current.revision + 1);
          expect(stored.hostId).toBe(results[0]!.status === 'fulfilled' ? 'a' : 'b');
        }
        // one event per winning unit, none of the losers'
        expect((await s.stores.events.read(0, 100)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      });
    });

    it('keeps the instance store answering what units committed (exclusive SQLite reads from it)', async () => {
      await withStores(dialect, async (s) => {
        const { unit, instances } = s.stores;
        const vm = buildTestInstance();
        await unit.commit([{ kind: 'instance.insert', instance: vm }]);
        expect(await instances.get(vm.id)).toEqual(vm);
        const next = { ...vm, name: 'n2', revision: 1 };
        await unit.commit([{ kind: 'instance.update', instance: next, expectedRevision: 0 }]);
        expect(await instances.get(vm.id)).toEqual(next);
        await expect(instances.update(vm.id, 0, { name: 'stale' }, 9)).rejects.toBeInstanceOf(
          RevisionConflictError,
        );
        await unit.commit([{ kind: 'instance.remove', id: vm.id }]);
        expect(await instances.get(vm.id)).toBeUndefined();
        await expect(instances.update(vm.id, 1, { name: 'gone' }, 9)).rejects.toBeInstanceOf(NotFoundError);
      });
    });
  });
}

describe.skipIf(!postgresAvailable)('SQL unit of work on PostgreSQL, two processes', () => {
  it('lets exactly one process win each compare-and-set race; every other unit stays whole', async () => {
    const a = await freshStores('postgres');
    const b = await openPostgresStores({ url: pgUrl, schema: a.schema! });
    try {
      const vm = buildTestInstance();
      await a.stores.instances.insert(vm);
      let revision = 0;
      for (let round = 0; round < 10; round++) {
        const attempt = (s: SqlStores, host: string) =>
          s.stores.unit.commit([
            { kind: 'action.start', action: action(vm.id, `${host}-${round}`) },
            {
              kind: 'instance.update',
              instance: { ...vm, hostId: host, revision: revision + 1 },
              expectedRevision: revision,
            },
          ]);
        // other callers' units in the same batches must commit regardless of the race's loser
        const bystanders = Array.from({ length: 4 }, (_, k) =>
          (k % 2 ? a : b).stores.unit.commit([{ kind: 'instance.insert', instance: buildTestInstance() }]),
        );
        const results = await Promise.allSettled([attempt(a, 'a'), attempt(b, 'b')]);
        await Promise.all(bystanders);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const loser = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
        expect(loser.reason).toBeInstanceOf(RevisionConflictError);
        revision++;
        const winner = results[0]!.status === 'fulfilled' ? 'a' : 'b';
        expect((await b.stores.actions.list(vm.id)).map((x) => x.id)).toContain(`${winner}-${round}`);
        expect((await b.stores.actions.list(vm.id)).map((x) => x.id)).not.toContain(
          `${winner === 'a' ? 'b' : 'a'}-${round}`,
        );
      }
      expect((await b.stores.instances.get(vm.id))!.revision).toBe(10);
      expect(await b.stores.instances.list()).toHaveLength(41);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

describe('SQL unit of work on SQLite (optimistic group commit)', () => {
  it('a unit failing in a group makes the group run again; the units beside it commit whole, their events numbered as logged', async () => {
    await withStores('sqlite', async (s) => {
      const { unit, instances, events } = s.stores;
      const exec = s.database.exec as SqliteExecutor;
      const moved = buildTestInstance({ projectId: 'p' });
      await unit.commit([{ kind: 'instance.insert', instance: moved }]);
      const current = { ...moved, hostId: 'h2', revision: 1 };
      await unit.commit([{ kind: 'instance.update', instance: current, expectedRevision: 0 }]);
      const [a, b] = [buildTestInstance({ projectId: 'p' }), buildTestInstance({ projectId: 'p' })];
      const before = exec.stats();
      // one group: the stale update fails after a's unit ran, so a's unit runs again
      const results = await Promise.allSettled([
        unit.commit([
          { kind: 'instance.insert', instance: a },
          { kind: 'event', event: deleted(a.id, 1) },
        ]),
        unit.commit([
          { kind: 'action.start', action: action(moved.id, 'stale-action') },
          { kind: 'event', event: deleted(moved.id, 2) },
          {
            kind: 'instance.update',
            instance: { ...moved, name: 'stale', revision: 1 },
            expectedRevision: 0,
          },
        ]),
        unit.commit([
          { kind: 'instance.insert', instance: b },
          { kind: 'event', event: deleted(b.id, 3) },
        ]),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(RevisionConflictError);
      const after = exec.stats();
      expect(after.replays - before.replays).toBe(1);
      expect(after.commits - before.commits).toBe(1);
      const logged = (r: PromiseSettledResult<unknown>) =>
        (r as PromiseFulfilledResult<Array<{ seq: number; event: InstanceEvent }>>).value.map((e) => [
          e.seq,
          e.event.instanceId,
        ]);
      expect(logged(results[0]!)).toEqual([[1, a.id]]);
      expect(logged(results[2]!)).toEqual([[2, b.id]]);
      expect((await events.read(0, 100)).map((e) => [e.seq, e.event.instanceId])).toEqual([
        [1, a.id],
        [2, b.id],
      ]);
      expect(await instances.get(a.id)).toEqual(a);
      expect(await instances.get(b.id)).toEqual(b);
      expect(await instances.get(moved.id)).toEqual(current);
      expect(await s.stores.actions.list(moved.id)).toEqual([]);
    });
  });
});
