import { createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
      // without batching the two together run as a unit of their own, whose begin and commit count
      expect(after.statements - before.statements).toBe(40 + 20 + 2 + (batching ? 0 : 2) + 40);
      const roundTrips = after.roundTrips - before.roundTrips;
      if (batching) {
        expect(roundTrips).toBeLessThan(20);
        expect(
          after.writeBatches.batched + after.relaxedBatches.batched + after.readBatches.batched,
        ).toBeGreaterThan(80);
      } else {
        // every statement alone; the two together are a unit (begin, 2 statements, commit)
        expect(roundTrips).toBe(40 + 20 + 4 + 40);
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
});
