import type { InstanceEvent } from '@nova-lfs/core';
import { buildTestInstance } from '@nova-lfs/core/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { openPostgresStores, type SqlStores } from './open-stores.js';
import { freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

const deleted = (instanceId: string, at: number): InstanceEvent => ({
  type: 'instance.deleted',
  instanceId,
  at,
});
const fault = (instanceId: string, at: number): InstanceEvent => ({
  type: 'instance.fault',
  instanceId,
  at,
  hostId: null,
  fault: { code: 'X', message: 'x', at },
});

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SQL event log on ${dialect}`, () => {
    it('reads from a cursor, by instance and by project (recorded from the unit, the row or earlier events)', async () => {
      const s = await freshStores(dialect);
      try {
        const { unit, events, instances } = s.stores;
        expect([await events.head(), await events.oldest()]).toEqual([0, 0]);
        const a = buildTestInstance({ projectId: 'pa' });
        const b = buildTestInstance({ projectId: 'pb' });
        // a's project from its created event, b's from the record inserted in the same unit
        await unit.commit([
          { kind: 'instance.insert', instance: a },
          { kind: 'event', event: { type: 'instance.created', instanceId: a.id, at: 1, instance: a } },
          { kind: 'instance.insert', instance: b },
          { kind: 'event', event: fault(b.id, 2) },
        ]);
        // c was written by another path: its project comes from its row in SQL
        const c = buildTestInstance({ projectId: 'pa' });
        const other = await reopen(s);
        try {
          await other.stores.instances.insert(c);
        } finally {
          if (other !== s) await other.close();
        }
        await s.events.append(fault(c.id, 3)); // the stream-recording path: no project known in JS
        // b is removed, then its deletion logged alone: its project comes from its earlier events
        await unit.commit([{ kind: 'instance.remove', id: b.id }]);
        await unit.commit([
          { kind: 'event', event: deleted(b.id, 4) },
          { kind: 'event', event: deleted(a.id, 5) },
        ]);

        expect(await events.head()).toBe(5);
        expect(await events.oldest()).toBe(1);
        const all = await events.read(0, 100);
        expect(all.map((e) => [e.seq, e.event.instanceId])).toEqual([
          [1, a.id],
          [2, b.id],
          [3, c.id],
          [4, b.id],
          [5, a.id],
        ]);
        expect((await events.read(0, 100, { projectId: 'pa' })).map((e) => e.seq)).toEqual([1, 3, 5]);
        expect((await events.read(0, 100, { projectId: 'pb' })).map((e) => e.seq)).toEqual([2, 4]);
        expect((await events.read(1, 100, { instanceId: a.id })).map((e) => e.seq)).toEqual([5]);
        expect(await events.read(0, 100, { instanceId: a.id, projectId: 'pb' })).toEqual([]);
        expect((await events.read(2, 2)).map((e) => e.seq)).toEqual([3, 4]);
        expect(await events.read(0, 0)).toEqual([]);
        expect(all[2]!.event).toEqual(fault(c.id, 3));
        expect(await instances.get(b.id)).toBeUndefined();
      } finally {
        await s.close();
      }
    });

    it('logs many events of one unit in order (several statements) and after a failed unit goes on without a gap', async () => {
      const s = await freshStores(dialect);
      try {
        const vm = buildTestInstance({ projectId: 'pm' });
        const many = Array.from({ length: 40 }, (_, k) => fault(vm.id, k));
        const logged = await s.stores.unit.commit([
          { kind: 'instance.insert', instance: vm },
          ...many.map((event) => ({ kind: 'event' as const, event })),
        ]);
        expect(logged).toEqual(many.map((event, k) => ({ seq: k + 1, event })));
        await expect(
          s.stores.unit.commit([
            { kind: 'event', event: fault(vm.id, 99) },
            { kind: 'instance.insert', instance: vm },
          ]),
        ).rejects.toMatchObject({ code: 'NLFS_DUPLICATE' });
        const [next] = await s.stores.unit.commit([{ kind: 'event', event: deleted(vm.id, 100) }]);
        expect(next!.seq).toBe(41);
        expect(await s.stores.events.read(0, 100, { projectId: 'pm' })).toEqual([...logged, next]);
      } finally {
        await s.close();
      }
    });

    it("keeps a run of one instance's events in one row, each event numbered: cursors inside a row, limits, filters, prune, rows of the old format", async () => {
      const s = await freshStores(dialect);
      try {
        const { unit, events } = s.stores;
        const { db } = s.database;
        const a = buildTestInstance({ projectId: 'pa' });
        const b = buildTestInstance({ projectId: 'pb' });
        await s.stores.instances.insert(a);
        await s.stores.instances.insert(b);
        // a row written before migration 0006 (one event, a JSON object, no event count given)
        await sql`insert into instance_events (seq, instance_id, project_id, type, at, data)
          values (1, ${a.id}, 'pa', 'instance.fault', 10, ${JSON.stringify(fault(a.id, 10))})`.execute(db);
        if (dialect === 'postgres') await sql`update instance_event_head set seq = 1`.execute(db);
        // one unit: three events of a, two of b, one of a again: three rows
        const logged = await unit.commit([
          { kind: 'event', event: fault(a.id, 11) },
          { kind: 'event', event: fault(a.id, 12) },
          { kind: 'event', event: fault(a.id, 13) },
          { kind: 'event', event: fault(b.id, 14) },
          { kind: 'event', event: fault(b.id, 15) },
          { kind: 'event', event: deleted(a.id, 16) },
        ]);
        expect(logged.map((e) => [e.seq, e.event.at])).toEqual([
          [2, 11],
          [3, 12],
          [4, 13],
          [5, 14],
          [6, 15],
          [7, 16],
        ]);
        const rows = await sql<{ seq: number | string; event_count: number | string }>`
          select seq, event_count from instance_events order by seq`.execute(db);
        expect(rows.rows.map((r) => [Number(r.seq), Number(r.event_count)])).toEqual([
          [1, 1],
          [4, 3],
          [6, 2],
          [7, 1],
        ]);
        const all = await events.read(0, 100);
        expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(all[0]!.event).toEqual(fault(a.id, 10));
        // a cursor inside a row resumes after it, without duplicates; limits count events
        expect((await events.read(2, 100)).map((e) => e.seq)).toEqual([3, 4, 5, 6, 7]);
        expect((await events.read(2, 1)).map((e) => e.seq)).toEqual([3]);
        expect((await events.read(3, 2)).map((e) => e.seq)).toEqual([4, 5]);
        expect((await events.read(5, 100, { projectId: 'pb' })).map((e) => e.seq)).toEqual([6]);
        expect((await events.read(0, 100, { instanceId: a.id })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 7]);
        expect((await events.read(0, 100, { projectId: 'pa' })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 7]);
        let cursor = 0;
        const paged: number[] = [];
        for (let page = await events.read(cursor, 2); page.length; page = await events.read(cursor, 2)) {
          paged.push(...page.map((e) => e.seq));
          cursor = page.at(-1)!.seq;
        }
        expect(paged).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(await s.events.list(b.id)).toEqual(all.filter((e) => e.event.instanceId === b.id));
        expect([await events.head(), await events.oldest()]).toEqual([7, 1]);
        // retention drops whole rows and counts their events; the next unit goes on numbering
        expect(await events.prune({ keepLast: 5 })).toBe(1); // the row of 1 (3, among the newest 5, keeps the row of 2-4)
        expect(await events.oldest()).toBe(2);
        expect(await events.prune({ keepLast: 3 })).toBe(3); // seq 2-4
        expect(await events.oldest()).toBe(5);
        const [next] = await unit.commit([{ kind: 'event', event: deleted(b.id, 17) }]);
        expect(next!.seq).toBe(8);
        expect(await events.prune({ keepLast: 0 })).toBe(4);
        expect([await events.head(), await events.oldest()]).toEqual([8, 9]);
      } finally {
        await s.close();
      }
    });

    it('prunes the oldest events by age and count; numbers are never reused', async () => {
      const s = await freshStores(dialect);
      try {
        const { unit, events } = s.stores;
        const vm = buildTestInstance();
        await s.stores.instances.insert(vm);
        for (let at = 1; at <= 10; at++)
          await unit.commit([{ kind: 'event', event: fault(vm.id, at * 100) }]);
        expect(await events.prune({})).toBe(0);
        expect(await events.prune({ olderThan: 350 })).toBe(3); // at 100, 200, 300
        expect(await events.oldest()).toBe(4);
        expect(await events.prune({ keepLast: 5 })).toBe(2); // seq 4, 5
        expect((await events.read(0, 100)).map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
        // both: drop while either says so, stop at the first event both keep
        expect(await events.prune({ keepLast: 4, olderThan: 800 })).toBe(2); // seq 6 (count), 7 (age)
        expect(await events.oldest()).toBe(8);
        expect(await events.read(3, 1)).toEqual([{ seq: 8, event: fault(vm.id, 800) }]); // an old cursor resumes at the oldest
        expect(await events.prune({ keepLast: 0 })).toBe(3);
        expect([await events.head(), await events.oldest()]).toEqual([10, 11]);
        const [logged] = await unit.commit([{ kind: 'event', event: deleted(vm.id, 2000) }]);
        expect(logged!.seq).toBe(11);
        expect(await events.oldest()).toBe(11);
      } finally {
        await s.close();
      }
    });

    it('numbers events recorded from an engine stream and written by units in one sequence', async () => {
      const s = await freshStores(dialect);
      try {
        const vm = buildTestInstance();
        const stream = new Subject<InstanceEvent>();
        const recording = s.events.record(stream);
        stream.next(fault(vm.id, 1));
        stream.next(fault(vm.id, 2));
        await s.events.flush();
        const [fromUnit] = await s.stores.unit.commit([{ kind: 'event', event: deleted(vm.id, 3) }]);
        stream.next(fault(vm.id, 4));
        await s.events.flush();
        recording.unsubscribe();
        expect(fromUnit!.seq).toBe(3);
        expect((await s.events.list(vm.id)).map((e) => [e.seq, e.event.at])).toEqual([
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
        ]);
        expect(await s.stores.events.head()).toBe(4);
      } finally {
        await s.close();
      }
    });
  });
}

/** Stores of a second process on the same PostgreSQL schema; on SQLite (one owner), the same stores. */
async function reopen(s: SqlStores & { schema?: string }): Promise<SqlStores> {
  return s.schema ? openPostgresStores({ url: pgUrl, schema: s.schema }) : s;
}

describe.skipIf(!postgresAvailable)('SQL event log on PostgreSQL under concurrent units', () => {
  it('makes a unit that takes a later number wait for the commit of the one holding the earlier', async () => {
    const a = await freshStores('postgres');
    const b = await openPostgresStores({ url: pgUrl, schema: a.schema! });
    const held = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${a.schema}` });
    await held.connect();
    try {
      const vm = buildTestInstance();
      await held.query('begin');
      // a transaction that appended an event (number 1) and has not committed yet
      const [append] = a.eventLog.append([fault(vm.id, 1)], () => undefined).statements;
      await held.query(append!.sql, [...append!.parameters]);
      const xid = (await held.query<{ xid: string }>('select pg_current_xact_id()::text as xid')).rows[0]!
        .xid;
      const later = b.stores.unit.commit([{ kind: 'event', event: fault(vm.id, 2) }]);
      // the later unit queues for the counter row, behind the open transaction
      const waiting = async () =>
        (
          await sql<{ n: string }>`select count(*) as n from pg_locks
            where locktype = 'transactionid' and not granted and transactionid::text = ${xid}`.execute(
            a.database.db,
          )
        ).rows[0]!.n;
      const deadline = Date.now() + 20_000;
      while (Number(await waiting()) === 0) {
        if (Date.now() > deadline) throw new Error('the later unit never waited for the earlier one');
      }
      // so a reader cannot see number 2 while number 1 may still commit
      expect(await a.stores.events.read(0, 10)).toEqual([]);
      await held.query('commit');
      expect((await later).map((e) => e.seq)).toEqual([2]);
      expect((await a.stores.events.read(0, 10)).map((e) => e.seq)).toEqual([1, 2]);
    } finally {
      await held.end();
      await b.close();
      await a.close();
    }
  });

  it('gives a reader polling with a cursor every event, in order, while two processes commit units', async () => {
    const a = await freshStores('postgres');
    const b = await openPostgresStores({ url: pgUrl, schema: a.schema! });
    const reader = await openPostgresStores({ url: pgUrl, schema: a.schema!, batching: false });
    try {
      const vm = buildTestInstance();
      await a.stores.instances.insert(vm);
      const chains = 12;
      const unitsPerChain = 15;
      let total = 0;
      let writing = true;
      const write = async (s: SqlStores, chain: number) => {
        for (let k = 0; k < unitsPerChain; k++) {
          const n = 1 + ((chain + k) % 3);
          total += n;
          await s.stores.unit.commit(
            Array.from({ length: n }, (_, j) => ({
              kind: 'event' as const,
              event: fault(vm.id, chain * 1000 + k * 10 + j),
            })),
          );
        }
      };
      const writers = Promise.all(Array.from({ length: chains }, (_, c) => write(c % 2 ? a : b, c))).finally(
        () => {
          writing = false;
        },
      );
      const seen: number[] = [];
      let cursor = 0;
      const deadline = Date.now() + 60_000;
      while ((writing || cursor < (await reader.stores.events.head())) && Date.now() < deadline) {
        for (const e of await reader.stores.events.read(cursor, 25)) {
          seen.push(e.seq);
          cursor = e.seq;
        }
      }
      await writers;
      const expected = Array.from({ length: total }, (_, k) => k + 1);
      // contiguous and complete: no number skipped by the cursor, none handed out twice
      expect(seen).toEqual(expected);
      expect((await reader.stores.events.read(0, total + 10)).map((e) => e.seq)).toEqual(expected);
      expect(await reader.stores.events.head()).toBe(total);
    } finally {
      await reader.close();
      await b.close();
      await a.close();
    }
  });
});
