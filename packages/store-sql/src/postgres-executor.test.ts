import { createCompute, NovaError } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseStatementError, InvalidParameterError, isDuplicate, StoreErrorCode } from './errors.js';
import { openPostgresStores } from './open-stores.js';
import { PostgresExecutor } from './postgres-executor.js';
import { dropSchema, freshSchema, pgUrl } from './sql-env.test-helper.js';

const schema = freshSchema();
let pool: pg.Pool;
let relaxed: pg.Pool;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`create schema "${schema}"`);
  await admin.end();
  const options = `-c search_path=${schema}`;
  pool = new pg.Pool({ connectionString: pgUrl, max: 6, options });
  relaxed = new pg.Pool({ connectionString: pgUrl, max: 2, options: `${options} -c synchronous_commit=off` });
  await pool.query('create table t (id text primary key, n int not null)');
});

afterAll(async () => {
  await pool.end();
  await relaxed.end();
  await dropSchema(schema);
});

const insert = (id: string, n: number) => ({
  sql: 'insert into t (id, n) values ($1, $2)',
  parameters: [id, n],
});
const read = (id: string) => ({ sql: 'select n from t where id = $1', parameters: [id] });

describe('PostgresExecutor', () => {
  it.each([true, false])(
    'batching %s: the same results; batching sends concurrent statements in fewer round trips',
    async (batching) => {
      const exec = new PostgresExecutor(pool, relaxed, { batching });
      const tag = `b${batching}`;
      const before = exec.stats();
      await Promise.all(Array.from({ length: 40 }, (_, i) => exec.run(insert(`${tag}-${i}`, i))));
      await Promise.all(Array.from({ length: 20 }, (_, i) => exec.runRelaxed(insert(`${tag}-r${i}`, i))));
      const together = await exec.runAll([insert(`${tag}-x`, 1), read(`${tag}-x`)]);
      expect(together[1]!.rows).toEqual([{ n: 1 }]);
      const reads = await Promise.all(
        Array.from({ length: 40 }, (_, i) => exec.run<{ n: number }>(read(`${tag}-${i}`))),
      );
      expect(reads.map((r) => r.rows[0]!.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
      const after = exec.stats();
      expect(after.statements - before.statements).toBe(40 + 20 + 2 + 40);
      const roundTrips = after.roundTrips - before.roundTrips;
      if (batching) {
        expect(roundTrips).toBeLessThan(20);
        expect(
          after.writeBatches.batched + after.relaxedBatches.batched + after.readBatches.batched,
        ).toBeGreaterThan(80);
      } else {
        // every statement alone; the two together one pipeline of their own (one round trip)
        expect(roundTrips).toBe(40 + 20 + 1 + 40);
        expect(after.writeBatches.batches).toBe(0);
      }
    },
  );

  it("two executors on one pool never run each other's statements (names come from the SQL text)", async () => {
    const a = new PostgresExecutor(pool, relaxed);
    const b = new PostgresExecutor(pool, relaxed);
    await a.run(insert('names', 5)); // a sees the insert first, b the read
    // the same texts first seen in opposite orders by the two executors, batched and alone
    for (let round = 0; round < 3; round++) {
      const [ra, rb] = await Promise.all([
        Promise.all([a.run<{ n: number }>(read('names')), a.run(insert(`names-a${round}`, 1))]),
        Promise.all([b.run<{ n: number }>(read('names')), b.run(insert(`names-b${round}`, 1))]),
      ]);
      expect(ra[0].rows).toEqual([{ n: 5 }]);
      expect(rb[0].rows).toEqual([{ n: 5 }]);
      expect(ra[1].affected).toBe(1);
      expect(rb[1].affected).toBe(1);
    }
  });

  it('marks contended statements (claims) for their own batches', async () => {
    const exec = new PostgresExecutor(pool, relaxed);
    const bump = { sql: 'update t set n = n + 1 where id = $1', parameters: ['c'], contended: true };
    await exec.run(insert('c', 0));
    await Promise.all(Array.from({ length: 10 }, () => exec.run(bump)));
    expect(exec.stats().contendedBatches.batched).toBeGreaterThanOrEqual(9);
    expect((await exec.run<{ n: number }>(read('c'))).rows[0]!.n).toBe(10);
  });

  it('openPostgresStores({ batching: false }) runs the engine with every statement on its own', async () => {
    const stores = await openPostgresStores({ url: pgUrl, schema: `${schema}_nb`, batching: false });
    try {
      const compute = await createCompute({
        stores: stores.stores,
        quota: stores.quota,
        flavors: [{ id: 'm1', vcpus: 1, ramMb: 64 }],
        hosts: [{ id: 'h', driver: new FakeDriver() }],
      });
      await compute.images.register(
        { id: 'img', name: 'img', diskFormat: 'raw', sha256: '5'.repeat(64) },
        { kind: 'bytes', bytes: new Uint8Array() },
      );
      const req = { name: 'a', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };
      const vms = (await Promise.all(Array.from({ length: 8 }, () => compute.create(req)))).flat();
      expect(vms.map((v) => v.vmState)).toEqual(Array(8).fill('active'));
      await Promise.all(vms.map((v) => compute.delete(v.id)));
      await compute.close();
      const exec = stores.database.exec as PostgresExecutor;
      const s = exec.stats();
      expect(s.statements).toBeGreaterThan(100);
      expect(s.writeBatches.batches + s.contendedBatches.batches + s.readBatches.batches).toBe(0);
    } finally {
      await stores.close();
      await dropSchema(`${schema}_nb`);
    }
  });

  it.each([true, false])(
    'batching %s: database refusals reach each caller as typed errors with the driver error as cause',
    async (batching) => {
      const exec = new PostgresExecutor(pool, relaxed, { batching, database: 'test-db' });
      const tag = `typed-${batching}`;
      await exec.run(insert(`${tag}-taken`, 0));
      const settled = await Promise.allSettled([
        exec.run(insert(`${tag}-ok`, 1)),
        exec.run(insert(`${tag}-taken`, 1)), // duplicate key
        exec.run({ sql: 'select $1::int as v', parameters: ['not a number'] }), // 22P02
        exec.run(insert(`${tag}-nul\u0000`, 1)), // a NUL byte never reaches the server
        exec.runAll([insert(`${tag}-unit`, 1), { sql: 'select 1 / $1::int as v', parameters: [0] }]),
        exec.unit((tx) => tx.run(insert(`${tag}-taken`, 2))),
      ]);
      expect(settled[0]).toEqual({ status: 'fulfilled', value: { rows: [], affected: 1 } });
      const reasons = settled.slice(1).map((s) => (s as PromiseRejectedResult).reason);
      expect(settled.slice(1).map((s) => s.status)).toEqual(Array(5).fill('rejected'));
      for (const r of reasons) {
        expect(r).not.toBeInstanceOf(pg.DatabaseError);
        expect(r).toBeInstanceOf(NovaError);
      }
      expect(reasons[0]).toBeInstanceOf(DatabaseStatementError);
      expect(reasons[0]).toMatchObject({
        code: StoreErrorCode.Duplicate,
        details: { sqlState: '23505', constraint: 't_pkey', table: 't' },
      });
      expect(reasons[0].cause).toBeInstanceOf(pg.DatabaseError);
      expect(isDuplicate(reasons[0])).toBe(true);
      expect(reasons[1]).toMatchObject({ code: StoreErrorCode.InvalidValue, details: { sqlState: '22P02' } });
      expect(reasons[2]).toBeInstanceOf(InvalidParameterError);
      expect(reasons[2]).toMatchObject({ code: StoreErrorCode.InvalidParameter, details: { parameter: 1 } });
      expect(reasons[3]).toMatchObject({ code: StoreErrorCode.InvalidValue, details: { sqlState: '22012' } });
      expect(reasons[4]).toMatchObject({ code: StoreErrorCode.Duplicate, details: { sqlState: '23505' } });
      // the unit that failed kept nothing
      const { rows } = await pool.query(`select id from t where id like $1 order by id`, [`${tag}-%`]);
      expect(rows).toEqual([{ id: `${tag}-ok` }, { id: `${tag}-taken` }]);
    },
  );

  it('every connection has a statement_timeout: a statement past it fails with NLFS_DB_TIMEOUT, alone or batched', async () => {
    const stores = await openPostgresStores({
      url: pgUrl,
      schema: `${schema}_to`,
      statementTimeoutMs: 1000, // long enough for the migrations on a loaded machine
    });
    try {
      const exec = stores.database.exec;
      const shown = await exec.run<{ statement_timeout: string }>({
        sql: 'show statement_timeout',
        parameters: [],
      });
      expect(shown.rows).toEqual([{ statement_timeout: '1s' }]);
      const slow = { sql: 'select pg_sleep($1::float8) as s', parameters: [30] };
      const fast = { sql: 'select $1::int as v', parameters: [7] };
      // alone (nothing else waiting), then in a batch, which the server refuses as a whole
      const [alone] = await Promise.allSettled([exec.run(slow)]);
      const before = (exec as PostgresExecutor).stats().readBatches;
      const [batched] = await Promise.allSettled([
        Promise.all([exec.run(fast), exec.run(fast), exec.run(slow)]),
      ]);
      const after = (exec as PostgresExecutor).stats().readBatches;
      expect(after.batches - before.batches).toBe(1);
      expect(after.fallbacks - before.fallbacks).toBe(1);
      for (const s of [alone, batched]) {
        expect(s).toMatchObject({
          status: 'rejected',
          reason: { code: StoreErrorCode.Timeout, details: { sqlState: '57014' }, retryable: true },
        });
      }
      // the fast statements of the refused batch were run again on their own
      expect((await exec.run<{ v: number }>(fast)).rows).toEqual([{ v: 7 }]);
    } finally {
      await stores.close();
      await dropSchema(`${schema}_to`);
    }
    // the default is 30 s
    const defaults = await openPostgresStores({ url: pgUrl, schema: `${schema}_dt` });
    try {
      const shown = await defaults.database.exec.run<{ statement_timeout: string }>({
        sql: 'show statement_timeout',
        parameters: [],
      });
      expect(shown.rows).toEqual([{ statement_timeout: '30s' }]);
    } finally {
      await defaults.close();
      await dropSchema(`${schema}_dt`);
    }
  });
});
