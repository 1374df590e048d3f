import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidParameterError, StoreErrorCode } from './errors.js';
import { type GroupCommitOptions, PostgresGroupCommit, type RunAlone } from './postgres-group-commit.js';
import { dropSchema, freshSchema, pgUrl } from './sql-env.test-helper.js';
import type { StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/**
 * Group commit against a real PostgreSQL server (never mocked), in a private schema per run.
 * No skip: with the server missing the helper throws under CI=true and these tests fail.
 */

const schema = freshSchema();
const pools: pg.Pool[] = [];
let pool: pg.Pool;
/** One other connection (a pool of one, so concurrent checks queue), to see what is committed. */
let observer: pg.Pool;

function newPool(config: pg.PoolConfig = {}): pg.Pool {
  const p = new pg.Pool({ connectionString: pgUrl, max: 4, options: `-c search_path=${schema}`, ...config });
  pools.push(p);
  return p;
}

/**
 * One number per SQL text for the whole file: the batcher's prepared-statement name is `t<instance>_N`,
 * the name `single` (pg's own named queries) uses is `p_N` (both live in one namespace per session, so
 * they differ).
 */
const numbers = new Map<string, number>();
function numberOf(sql: string): number {
  let n = numbers.get(sql);
  if (n === undefined) {
    n = numbers.size;
    numbers.set(sql, n);
  }
  return n;
}

interface Harness {
  readonly gc: PostgresGroupCommit;
  run<R = Record<string, unknown>>(sql: string, parameters?: readonly unknown[]): Promise<StatementResult<R>>;
  /** Statements that commit together. */
  runAll(
    statements: ReadonlyArray<[sql: string, parameters: readonly unknown[]]>,
  ): Promise<StatementResult<Record<string, unknown>>[]>;
  /** Statements run through `single` so far. */
  singles(): number;
}

let harnesses = 0;

/**
 * A group commit on `on`, whose `single` runs a statement the way the executor's `alone` does.
 * Instances get their own names (`t<instance>_N`): a name means one SQL text per connection.
 */
function harness(on: pg.Pool, options: GroupCommitOptions = {}): Harness {
  const instance = harnesses++;
  let singles = 0;
  const single = async (
    s: BoundStatement,
    client?: pg.PoolClient,
  ): Promise<StatementResult<Record<string, unknown>>> => {
    singles++;
    // as the executor does: a connection whose statement the server refused goes back to the
    // pool for reuse (pool.query would close it), with what its session prepared
    const c = client ?? (await on.connect());
    try {
      const r = await c.query({
        name: `p_${numberOf(s.sql)}`,
        text: s.sql,
        values: s.parameters as unknown[],
      });
      return { rows: r.rows, affected: r.rowCount ?? 0 };
    } finally {
      if (!client) c.release();
    }
  };
  // one statement alone; several in a transaction of their own
  const alone: RunAlone = async (statements) => {
    if (statements.length === 1) return [await single(statements[0]!)];
    const client = await on.connect();
    try {
      await client.query('begin');
      const results: Array<StatementResult<Record<string, unknown>>> = [];
      for (const s of statements) results.push(await single(s, client));
      await client.query('commit');
      return results;
    } catch (e) {
      await client.query('rollback');
      throw e;
    } finally {
      client.release();
    }
  };
  const gc = new PostgresGroupCommit(on, alone, options);
  return {
    gc,
    run: <R>(sql: string, parameters: readonly unknown[] = []) =>
      gc.submit<R>({ sql, parameters }, `t${instance}_${numberOf(sql)}`),
    runAll: (statements) =>
      gc.submitAll(
        statements.map(([sql, parameters]) => ({
          statement: { sql, parameters },
          name: `t${instance}_${numberOf(sql)}`,
        })),
      ),
    singles: () => singles,
  };
}

function delta(before: ReturnType<PostgresGroupCommit['stats']>, after: typeof before) {
  return {
    batches: after.batches - before.batches,
    batched: after.batched - before.batched,
    fallbacks: after.fallbacks - before.fallbacks,
  };
}

/** A row of the `hostile` table as written. */
interface HostileRow {
  readonly id: number;
  readonly s: string | null;
  readonly j: unknown;
  readonly b: Uint8Array | null;
  readonly flag: boolean | null;
  readonly num: number | null;
  readonly big: bigint | string | null;
  readonly ts: Date | null;
  readonly arr: (string | null)[] | null;
}

const INSERT_ITEM = 'insert into items (tag) values ($1) returning id, tag';
const SELECT_PLUS = 'select $1::int + 1 as v';
const BUMP = 'update kv set n = n + 1 where id = $1';
const INSERT_KV = 'insert into kv (id, n) values ($1, $2)';
const INSERT_AUDIT = 'insert into audit (tag) values ($1)';

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`create schema "${schema}"`);
  await admin.end();
  pool = newPool();
  await pool.query(`
    create table items (id serial primary key, tag text not null);
    create table kv (id text primary key, n int not null default 0);
    create table audit (tag text not null);
    create table deferred_kv (id text, constraint deferred_kv_id unique (id) deferrable initially deferred);
    create table hostile (
      id int primary key, s text, j jsonb, b bytea, flag boolean,
      num double precision, big bigint, ts timestamptz, arr text[]
    );
    create table x (v int);
    insert into x values (42);
  `);
  observer = newPool({ max: 1 });
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await dropSchema(schema);
});

describe('PostgresGroupCommit on a real PostgreSQL', () => {
  it('batches 200 concurrent statements and gives every caller its own rows and affected count', async () => {
    await pool.query(`insert into kv (id) select 'u' || g from generate_series(0, 24) g`);
    const h = harness(pool);
    const before = h.gc.stats();
    const inserts = Array.from({ length: 100 }, (_, i) =>
      h.run<{ id: number; tag: string }>(INSERT_ITEM, [`item-${i}`]),
    );
    const selects = Array.from({ length: 50 }, (_, i) => h.run<{ v: number }>(SELECT_PLUS, [i]));
    // half of these rows exist (u0..u24), half do not (u25..u49)
    const updates = Array.from({ length: 50 }, (_, i) => h.run(BUMP, [`u${i}`]));
    const [ins, sel, upd] = await Promise.all([
      Promise.all(inserts),
      Promise.all(selects),
      Promise.all(updates),
    ]);
    const d = delta(before, h.gc.stats());
    expect(d.batched).toBe(200);
    expect(d.batches).toBeGreaterThanOrEqual(1);
    expect(d.batches).toBeLessThanOrEqual(4);
    expect(d.fallbacks).toBe(0);
    expect(h.singles()).toBe(0);

    ins.forEach((r, i) => {
      expect(r.affected).toBe(1);
      expect(r.rows).toHaveLength(1);
      expect(r.rows[0]!.tag).toBe(`item-${i}`);
    });
    const ids = ins.map((r) => r.rows[0]!.id);
    expect(new Set(ids).size).toBe(100);
    const stored = await observer.query<{ id: number; tag: string }>(
      `select id, tag from items where tag like 'item-%'`,
    );
    expect(stored.rowCount).toBe(100);
    const byId = new Map(stored.rows.map((r) => [r.id, r.tag]));
    ins.forEach((r, i) => {
      expect(byId.get(r.rows[0]!.id)).toBe(`item-${i}`);
    });

    sel.forEach((r, i) => {
      expect(r.rows).toEqual([{ v: i + 1 }]);
      expect(r.affected).toBe(1);
    });
    upd.forEach((r, i) => {
      expect(r.rows).toEqual([]);
      expect(r.affected).toBe(i < 25 ? 1 : 0);
    });
    const counts = await observer.query<{ id: string; n: number }>(
      `select id, n from kv where id like 'u%' order by id`,
    );
    expect(counts.rowCount).toBe(25);
    for (const row of counts.rows) expect(row.n).toBe(1);
  });

  it('respects maxBatch and gathers statements that arrive while a batch is in flight', async () => {
    const split = harness(pool, { maxBatch: 64 });
    const before = split.gc.stats();
    await Promise.all(Array.from({ length: 200 }, (_, i) => split.run(SELECT_PLUS, [i])));
    expect(delta(before, split.gc.stats())).toEqual({ batches: 4, batched: 200, fallbacks: 0 });

    // 50 callers, each running 4 statements one after the other: later statements arrive while
    // a batch is on the wire and must share the next one
    const h = harness(pool);
    const start = h.gc.stats();
    const seen = await Promise.all(
      Array.from({ length: 50 }, async (_, w) => {
        const out: number[] = [];
        for (let k = 0; k < 4; k++) {
          const r = await h.run<{ v: number }>(SELECT_PLUS, [w * 10 + k]);
          out.push(r.rows[0]!.v);
        }
        return out;
      }),
    );
    seen.forEach((out, w) => {
      expect(out).toEqual([1, 2, 3, 4].map((k) => w * 10 + k));
    });
    const d = delta(start, h.gc.stats());
    expect(d.batched + h.singles()).toBe(200);
    expect(d.batched).toBeGreaterThanOrEqual(150);
    expect(d.batches).toBeLessThanOrEqual(20);
  });

  it('rejects only the caller whose insert hits a duplicate key; the others are stored exactly once', async () => {
    await pool.query(`insert into kv (id, n) values ('dup', 0)`);
    const h = harness(pool);
    const before = h.gc.stats();
    const calls: Promise<StatementResult<unknown>>[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 30) calls.push(h.run(INSERT_KV, ['dup', 1])); // exists already
      if (i === 40) calls.push(h.run(INSERT_KV, ['twin', 1]), h.run(INSERT_KV, ['twin', 2])); // duplicate in the batch
      calls.push(h.run(INSERT_KV, [`ok-${i}`, i]));
      calls.push(h.run(INSERT_AUDIT, [`audit-${i}`])); // no key: a second run would show
    }
    const settled = await Promise.allSettled(calls);
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(rejected).toHaveLength(2);
    for (const r of rejected) {
      expect(r.reason).toBeInstanceOf(pg.DatabaseError);
      expect(r.reason).toMatchObject({ code: '23505', constraint: 'kv_pkey' });
    }
    // 'dup' was the one that failed, and exactly one of the twins
    const dupIndex = 30 * 2;
    expect(settled[dupIndex]!.status).toBe('rejected');
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.affected).toBe(1);

    const d = delta(before, h.gc.stats());
    expect(d.fallbacks).toBeGreaterThanOrEqual(1);
    expect(d.batched).toBe(calls.length);

    const kv = await observer.query<{ id: string; n: number }>(
      `select id, n from kv where id like 'ok-%' or id in ('dup', 'twin') order by id`,
    );
    expect(kv.rows.filter((r) => r.id.startsWith('ok-'))).toHaveLength(60);
    for (const r of kv.rows) if (r.id.startsWith('ok-')) expect(r.n).toBe(Number(r.id.slice(3)));
    expect(kv.rows.find((r) => r.id === 'dup')).toEqual({ id: 'dup', n: 0 });
    expect(kv.rows.filter((r) => r.id === 'twin')).toHaveLength(1);
    const audit = await observer.query<{ tag: string; c: number }>(
      `select tag, count(*)::int as c from audit where tag like 'audit-%' group by tag`,
    );
    expect(audit.rowCount).toBe(60);
    for (const r of audit.rows) expect(r.c).toBe(1);
  });

  it('falls back when the commit itself fails (deferred unique constraint)', async () => {
    const h = harness(pool);
    const before = h.gc.stats();
    const sql = 'insert into deferred_kv (id) values ($1)';
    const settled = await Promise.allSettled([
      h.run(sql, ['d1']),
      h.run(sql, ['same']),
      h.run(sql, ['d2']),
      h.run(sql, ['same']),
    ]);
    expect(settled.map((s) => s.status).filter((s) => s === 'rejected')).toHaveLength(1);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')!;
    expect(failure.reason).toMatchObject({ code: '23505' });
    expect(settled[0]!.status).toBe('fulfilled');
    expect(settled[2]!.status).toBe('fulfilled');
    expect(delta(before, h.gc.stats()).fallbacks).toBe(1);
    const rows = await observer.query<{ id: string; c: number }>(
      'select id, count(*)::int as c from deferred_kv group by id order by id',
    );
    expect(rows.rows).toEqual([
      { id: 'd1', c: 1 },
      { id: 'd2', c: 1 },
      { id: 'same', c: 1 },
    ]);
  });

  it('round-trips hostile parameter values exactly and never runs them as SQL', async () => {
    const strings = [
      "it's",
      "''",
      "'",
      '\\',
      "a\\'b",
      "\\'); drop table x; --",
      "'); drop table x; --",
      "x'); delete from x; select ('",
      '\\x41',
      "E'\\n'",
      '$1',
      '$2::text',
      '$$ dollar $$',
      '$tag$ quoted $tag$',
      "' or 1=1 --",
      '/* comment */',
      'line1\nline2\r\n\ttab',
      'unicode: héllo 日本語 🚀 \u2028 \u{10FFFF}',
      '',
      ' leading and trailing ',
      '{"a","b"}',
    ];
    const json = {
      quote: "it's",
      back: '\\',
      evil: "'); drop table x; --",
      nested: { list: [1.5, null, true, 'a\nb', '$1'] },
    };
    const blob = Buffer.from([0, 1, 39, 92, 120, 255, ...Buffer.from("'); drop table x; --")]);
    const when = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123));
    const nums = [0, -1.5, 1e-7, 12345.678901, Number.MAX_SAFE_INTEGER, -0.1];
    const insert =
      'insert into hostile (id, s, j, b, flag, num, big, ts, arr) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *';
    const echo = 'select $1::text as s, $2::jsonb as j, $3::bytea as b';
    const h = harness(pool);
    const before = h.gc.stats();

    const rows = strings.map(
      (s, i): HostileRow => ({
        id: i,
        s,
        j: i % 2 === 0 ? { ...json, s } : { list: [s, json] },
        b:
          i % 3 === 0
            ? new Uint8Array(Buffer.concat([blob, Buffer.from(s)]))
            : Buffer.concat([blob, Buffer.from(s)]),
        flag: [true, false, null][i % 3] as boolean | null,
        num: nums[i % nums.length]!,
        big: i % 2 === 0 ? 9007199254740993n : '-9223372036854775808',
        ts: new Date(when.getTime() + i),
        arr: [s, "b'c", 'd\\e', null, '{x}', '"q"', ''],
      }),
    );
    rows.push({ id: 999, s: null, j: null, b: null, flag: null, num: null, big: null, ts: null, arr: null });
    const [inserted, echoed] = await Promise.all([
      Promise.all(rows.map((r) => h.run(insert, [r.id, r.s, r.j, r.b, r.flag, r.num, r.big, r.ts, r.arr]))),
      Promise.all(strings.map((s) => h.run<{ s: string; j: unknown; b: Buffer }>(echo, [s, { s }, blob]))),
    ]);
    const d = delta(before, h.gc.stats());
    expect(d.batched).toBe(rows.length + strings.length);
    expect(d.fallbacks).toBe(0);
    expect(h.singles()).toBe(0);

    const expected = (r: HostileRow) => ({
      id: r.id,
      s: r.s,
      j: r.j,
      b: r.b === null ? null : Buffer.from(r.b),
      flag: r.flag,
      num: r.num,
      big: r.big === null ? null : String(r.big),
      ts: r.ts,
      arr: r.arr,
    });
    inserted.forEach((res, i) => {
      expect(res.affected).toBe(1);
      expect(res.rows).toEqual([expected(rows[i]!)]);
    });
    echoed.forEach((res, i) => {
      expect(res.rows).toEqual([{ s: strings[i], j: { s: strings[i] }, b: blob }]);
    });

    const stored = await observer.query('select * from hostile order by id');
    expect(stored.rows).toEqual([...rows].sort((a, b) => a.id - b.id).map(expected));
    expect((await observer.query('select v from x')).rows).toEqual([{ v: 42 }]);
  });

  it('settles every caller only after its batch committed: another connection sees the row', async () => {
    const h = harness(pool);
    const before = h.gc.stats();
    const sees = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        h.run(INSERT_KV, [`seen-${i}`, i]).then(async () => {
          const r = await observer.query<{ n: number }>('select n from kv where id = $1', [`seen-${i}`]);
          return r.rows;
        }),
      ),
    );
    expect(delta(before, h.gc.stats()).batched).toBe(40);
    sees.forEach((rows, i) => {
      expect(rows).toEqual([{ n: i }]);
    });

    // the same after a fallback: the callers that succeed alone are committed when they settle
    await pool.query(`insert into kv (id, n) values ('seen-taken', 0)`);
    const mixed = await Promise.allSettled(
      ['seen-a', 'seen-taken', 'seen-b'].map((id) =>
        h.run(INSERT_KV, [id, 7]).then(async () => {
          const r = await observer.query<{ n: number }>('select n from kv where id = $1', [id]);
          return r.rows;
        }),
      ),
    );
    expect(mixed.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((mixed[0] as PromiseFulfilledResult<unknown>).value).toEqual([{ n: 7 }]);
    expect((mixed[2] as PromiseFulfilledResult<unknown>).value).toEqual([{ n: 7 }]);
  });

  it('sends values only as bind parameters: the server holds placeholders, never a value, in any SQL text', async () => {
    // one connection, named, so the observer can read what the server holds for it
    const p = newPool({ max: 1, application_name: 'gc-bind-test' });
    const h = harness(p);
    const marker = `marker-${Date.now()}`;
    const evil = `'); drop table x; -- ${marker}`;
    const before = h.gc.stats();
    const [inserted, echoed] = await Promise.all([
      h.run<{ id: number; tag: string }>(INSERT_ITEM, [evil]),
      h.run<{ s: string }>('select $1::text as s', [`${marker} \\' $1 $$`]),
    ]);
    expect(delta(before, h.gc.stats())).toEqual({ batches: 1, batched: 2, fallbacks: 0 });
    expect(inserted.rows[0]!.tag).toBe(evil);
    expect(echoed.rows).toEqual([{ s: `${marker} \\' $1 $$` }]);
    // the session's prepared statements are the statements' own texts, with their placeholders
    const prepared = await p.query<{ statement: string; from_sql: boolean }>(
      'select statement, from_sql from pg_prepared_statements',
    );
    const texts = prepared.rows.map((r) => r.statement);
    expect(texts).toEqual(expect.arrayContaining([INSERT_ITEM, 'select $1::text as s']));
    for (const r of prepared.rows) {
      expect(r.statement).not.toContain(marker);
      expect(r.from_sql).toBe(false); // protocol-level Parse, not SQL PREPARE
    }
    // the last statement the session ran, as the server records it: a placeholder, no value
    const activity = await observer.query<{ query: string }>(
      `select query from pg_stat_activity where application_name = 'gc-bind-test'`,
    );
    expect(activity.rows).toHaveLength(1);
    expect(activity.rows[0]!.query).not.toContain(marker);
    expect((await observer.query('select v from x')).rows).toEqual([{ v: 42 }]);
  });

  it('a NUL byte fails only its caller, with a typed error, before the batch goes out', async () => {
    const h = harness(pool);
    const before = h.gc.stats();
    const settled = await Promise.allSettled([
      h.run(INSERT_KV, ['nul-a', 1]),
      h.run(INSERT_KV, ['nul\u0000; drop table x; --', 2]),
      h.runAll([
        [INSERT_KV, ['nul-b', 1]],
        [INSERT_AUDIT, ['nul\u0000']],
      ]),
      h.run(INSERT_KV, ['nul-c', 3]),
    ]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
    expect(settled[3]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
    for (const i of [1, 2]) {
      const r = settled[i] as PromiseRejectedResult;
      expect(r.status).toBe('rejected');
      expect(r.reason).toBeInstanceOf(InvalidParameterError);
      expect(r.reason).toMatchObject({ code: StoreErrorCode.InvalidParameter });
    }
    expect((settled[1] as PromiseRejectedResult).reason.details.parameter).toBe(1);
    expect((settled[2] as PromiseRejectedResult).reason.details.parameter).toBe(1);
    // refused before sending: the others went in one batch that the server did not refuse
    expect(delta(before, h.gc.stats())).toEqual({ batches: 1, batched: 2, fallbacks: 0 });
    const { rows } = await observer.query(`select id from kv where id like 'nul%' order by id`);
    expect(rows).toEqual([{ id: 'nul-a' }, { id: 'nul-c' }]);
    expect((await observer.query('select v from x')).rows).toEqual([{ v: 42 }]);
  });

  it('a lone statement goes through single, outside any batch', async () => {
    const h = harness(pool);
    const r = await h.run<{ v: number }>(SELECT_PLUS, [41]);
    expect(r).toEqual({ rows: [{ v: 42 }], affected: 1 });
    expect(h.gc.stats()).toEqual({ batches: 0, batched: 0, fallbacks: 0 });
    expect(h.singles()).toBe(1);
  });
});

describe('PostgresGroupCommit statements submitted together', () => {
  it('commit together, in order, amid other submissions, one round trip for all', async () => {
    const h = harness(pool);
    const before = h.gc.stats();
    const units = Array.from({ length: 20 }, (_, i) =>
      h.runAll([
        [INSERT_KV, [`unit-${i}`, 1]],
        [BUMP, [`unit-${i}`]],
        ['select n from kv where id = $1', [`unit-${i}`]],
      ]),
    );
    const loose = Array.from({ length: 20 }, (_, i) => h.run(INSERT_AUDIT, [`loose-${i}`]));
    const results = await Promise.all(units);
    await Promise.all(loose);
    for (const r of results) {
      expect(r.map((x) => x.affected)).toEqual([1, 1, 1]);
      expect(r[2]!.rows).toEqual([{ n: 2 }]);
    }
    const d = delta(before, h.gc.stats());
    expect(d.fallbacks).toBe(0);
    expect(d.batched).toBe(80);
    expect(d.batches).toBeLessThanOrEqual(3);
  });

  it('one failing statement undoes its whole unit only; the other submissions of the batch commit', async () => {
    const h = harness(pool);
    await pool.query(`insert into kv (id, n) values ('unit-taken', 0)`);
    const settled = await Promise.allSettled([
      h.runAll([
        [INSERT_KV, ['unit-doomed', 1]],
        [INSERT_KV, ['unit-taken', 1]],
      ]),
      h.runAll([
        [INSERT_KV, ['unit-ok', 1]],
        [BUMP, ['unit-ok']],
      ]),
      h.run(INSERT_KV, ['unit-loose', 1]),
    ]);
    expect(settled[0]).toMatchObject({ status: 'rejected', reason: { code: '23505' } });
    expect(settled[1].status).toBe('fulfilled');
    expect(settled[2].status).toBe('fulfilled');
    const { rows } = await observer.query(
      `select id, n from kv where id in ('unit-doomed', 'unit-taken', 'unit-ok', 'unit-loose') order by id`,
    );
    expect(rows).toEqual([
      { id: 'unit-loose', n: 1 },
      { id: 'unit-ok', n: 2 },
      { id: 'unit-taken', n: 0 },
    ]);
  });
});

describe('PostgresGroupCommit failure paths', () => {
  it('a statement whose Parse fails does not leave the others of its batch unbatchable afterwards', async () => {
    // the server skips everything after the failing Parse up to the Sync: the statements after it
    // were never prepared, the ones before it were; a wrong record either way would make every
    // later batch with them fail on that connection (42P05 already exists, or 26000 does not exist)
    const p = newPool({ max: 1 });
    const h = harness(p);
    const good = 'select $1::int * 3 as v';
    const later = 'select $1::int * 5 as v';
    const bad = 'select v from no_such_table where v = $1';
    const first = await Promise.allSettled([h.run(good, [1]), h.run(bad, [1]), h.run(later, [1])]);
    expect(first[0]).toEqual({ status: 'fulfilled', value: { rows: [{ v: 3 }], affected: 1 } });
    expect(first[1]).toMatchObject({ status: 'rejected', reason: { code: '42P01' } });
    expect(first[2]).toEqual({ status: 'fulfilled', value: { rows: [{ v: 5 }], affected: 1 } });
    const before = h.gc.stats();
    for (let round = 0; round < 3; round++) {
      const out = await Promise.all([h.run<{ v: number }>(good, [2]), h.run<{ v: number }>(later, [3])]);
      expect(out.map((r) => r.rows[0]!.v)).toEqual([6, 15]);
    }
    expect(delta(before, h.gc.stats())).toEqual({ batches: 3, batched: 6, fallbacks: 0 });
  });

  it('a statement first parsed in a batch that failed at its own execution is prepared afresh, not twice', async () => {
    // its Parse ran (the failure came after it): without a Close first, parsing it again on the
    // same connection would fail with 42P05 and every later batch with it would fall back
    const p = newPool({ max: 1 });
    const h = harness(p);
    await p.query(`insert into kv (id, n) values ('parsed-taken', 0)`);
    const insert = 'insert into kv (id, n) values ($1, $2 + 0)'; // a text no other test prepared
    const first = await Promise.allSettled([h.run(SELECT_PLUS, [1]), h.run(insert, ['parsed-taken', 1])]);
    expect(first[1]).toMatchObject({ status: 'rejected', reason: { code: '23505' } });
    const before = h.gc.stats();
    const out = await Promise.all([h.run(insert, ['parsed-a', 1]), h.run(insert, ['parsed-b', 2])]);
    expect(out.map((r) => r.affected)).toEqual([1, 1]);
    expect(delta(before, h.gc.stats())).toEqual({ batches: 1, batched: 2, fallbacks: 0 });
  });

  it('a failing batch on a small pool still settles every caller with its own result', async () => {
    // were the batch to keep its connection while the fallback runs each statement through
    // `single` on the same pool, `single` would wait for one forever (here: the pool's timeout)
    const p = newPool({ max: 1, connectionTimeoutMillis: 1500 });
    const h = harness(p);
    await p.query(`insert into kv (id, n) values ('small-taken', 0)`);
    const settled = await Promise.allSettled(
      ['small-a', 'small-taken', 'small-b'].map((id) => h.run(INSERT_KV, [id, 1])),
    );
    expect(settled[1]).toMatchObject({ status: 'rejected', reason: { code: '23505' } });
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
    expect(settled[2]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
  });

  it("one caller's unconvertible parameter fails only that caller, not the whole batch", async () => {
    // pg itself rejects such a value for that query alone; in a batch the conversion throws
    // before anything is sent, and must not take the other callers down with it
    const h = harness(pool);
    const settled = await Promise.allSettled([
      h.run(INSERT_KV, ['conv-a', 1]),
      h.run('select $1::jsonb as j', [{ big: 1n }]),
      h.run(INSERT_KV, ['conv-b', 2]),
    ]);
    expect(settled[1]).toMatchObject({
      status: 'rejected',
      reason: { code: StoreErrorCode.InvalidParameter, cause: expect.any(TypeError) },
    });
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
    expect(settled[2]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
  });
});
