import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCompute, ErrorCode, QuotaExceededError, ValidationError } from '@nova-lfs/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { exited, startWorker } from './crash/crash-harness.js';
import { StoreErrorCode } from './errors.js';
import { openPostgresStores, openSqliteStores } from './open-stores.js';
import { dropSchema, freshSchema, freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';
import { SqlQuotaEngine } from './sql-quota-engine.js';

const reserveWorkerPath = new URL('./crash/reserve-worker.ts', import.meta.url).pathname;
const one = { instances: 1, cores: 1, ramMb: 128 };

/** The fields a ValidationError names, or a failure saying what was thrown instead. */
async function refusedFields(attempt: () => unknown): Promise<string[]> {
  try {
    await attempt();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    expect(e).toMatchObject({ code: ErrorCode.Validation });
    return (e as ValidationError).fields;
  }
  throw new Error('not refused');
}

const invalid: Array<[unknown, string[]]> = [
  [{ instances: Number.NaN, cores: 1, ramMb: 1 }, ['instances']],
  [{}, ['instances', 'cores', 'ramMb']],
  [{ instances: 1, cores: -5, ramMb: 1 }, ['cores']],
  [{ instances: 1, cores: 1, ramMb: 1.5 }, ['ramMb']],
  [{ instances: Number.POSITIVE_INFINITY, cores: 1, ramMb: 1 }, ['instances']],
  [{ instances: '10', cores: 1, ramMb: 1 }, ['instances']],
];

describe.each(['sqlite', 'postgres'] as const)('SQL quota limits on %s', (dialect) => {
  it.skipIf(dialect === 'postgres' && !postgresAvailable)(
    'refuses invalid defaults and limits with a ValidationError naming the field, and keeps the old ones',
    async () => {
      const s = await freshStores(dialect, { staleReservationMs: 30_000 });
      try {
        for (const [limits, fields] of invalid) {
          expect(await refusedFields(() => new SqlQuotaEngine(s.database, limits as never))).toEqual(fields);
          expect(await refusedFields(() => s.quota.setDefaults(limits as never))).toEqual(fields);
        }
        for (const [limits, field] of [
          [{ instances: Number.NaN }, 'instances'],
          [{ ramMb: -5 }, 'ramMb'],
          [{ cores: 2.5 }, 'cores'],
          [{ cores: null }, 'cores'],
        ] as const) {
          expect(await refusedFields(() => s.quota.setLimits('p', limits as never))).toEqual([field]);
        }
        expect(await refusedFields(() => new SqlQuotaEngine(s.database, undefined, -1))).toEqual([
          'staleReservationMs',
        ]);
        // nothing changed: the defaults still admit, and the project has no limits of its own
        expect((await s.quota.usage('p')).limits).toEqual({ instances: 10, cores: 20, ramMb: 51_200 });
        const r = await s.quota.reserve('p', one);
        await s.quota.commit(r);
        expect((await s.quota.usage('p')).inUse.instances).toBe(1);
        // valid limits still work, and are enforced
        s.quota.setDefaults({ instances: 1, cores: 5, ramMb: 1024 });
        await expect(s.quota.reserve('p', one)).rejects.toBeInstanceOf(QuotaExceededError);
        await s.quota.setLimits('p', { instances: 2 });
        await s.quota.rollback(await s.quota.reserve('p', one));
      } finally {
        await s.close();
      }
    },
  );
});

describe('SQL quota defaults given when opening', () => {
  it('openSqliteStores and createCompute refuse invalid quota defaults with a ValidationError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nlfs-quota-'));
    expect(
      await refusedFields(() =>
        openSqliteStores({ path: join(dir, 'a.sqlite'), quotaDefaults: {} as never }),
      ),
    ).toEqual(['instances', 'cores', 'ramMb']);
    expect(
      await refusedFields(() =>
        createCompute({
          storage: { kind: 'sqlite', dataDir: dir },
          quota: { defaults: { instances: Number.NaN, cores: 1, ramMb: 1 } },
        }),
      ),
    ).toEqual(['instances']);
  });

  it.skipIf(!postgresAvailable)(
    'openPostgresStores refuses invalid quota defaults before connecting',
    async () => {
      const schema = freshSchema();
      expect(
        await refusedFields(() =>
          openPostgresStores({ url: pgUrl, schema, quotaDefaults: { instances: -5, cores: 1, ramMb: 1 } }),
        ),
      ).toEqual(['instances']);
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      const r = await c.query('select 1 from information_schema.schemata where schema_name = $1', [schema]);
      await c.end();
      expect(r.rowCount).toBe(0);
    },
  );
});

describe.skipIf(!postgresAvailable)('SQL quota on PostgreSQL: typed errors', () => {
  it('a NUL byte in a project id gives a typed store error, never a raw pg DatabaseError', async () => {
    const s = await freshStores('postgres', { staleReservationMs: 30_000 });
    try {
      for (const attempt of [
        () => s.quota.reserve('p\u0000x', one),
        () => s.quota.usage('p\u0000x'),
        () => s.quota.setLimits('p\u0000x', { instances: 1 }),
        () => s.stores.instances.get('i\u0000'),
      ]) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).not.toBeInstanceOf(pg.DatabaseError);
        expect(err).toMatchObject({
          code: StoreErrorCode.InvalidParameter,
          details: { parameter: expect.any(Number) },
        });
      }
      expect((await s.quota.usage('p')).reserved.instances).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe.each(['sqlite', 'postgres'] as const)('stale reservations on %s', (dialect) => {
  it.skipIf(dialect === 'postgres' && !postgresAvailable)(
    'expireStale drops the reservations of a killed process once stale, while the engine runs (no reconcile)',
    async () => {
      const location =
        dialect === 'sqlite' ? join(mkdtempSync(join(tmpdir(), 'nlfs-stale-')), 'db.sqlite') : freshSchema();
      const open = () =>
        dialect === 'sqlite'
          ? openSqliteStores({ path: location, shared: true, staleReservationMs: 30_000 })
          : openPostgresStores({ url: pgUrl, schema: location, staleReservationMs: 30_000 });
      const s = await open();
      try {
        await s.quota.setLimits('p', { instances: 3 });
        const { child } = await startWorker([dialect, location, '2', pgUrl], reserveWorkerPath);
        child.kill('SIGKILL');
        await exited(child);
        const killedAt = Date.now();
        // the killed process's two reservations hold the quota
        expect((await s.quota.usage('p')).reserved).toEqual({ instances: 2, cores: 2, ramMb: 256 });
        const mine = await s.quota.reserve('p', one);
        await expect(s.quota.reserve('p', one)).rejects.toBeInstanceOf(QuotaExceededError);
        // not stale yet: nothing is dropped
        expect(await s.quota.expireStale()).toBe(0);
        expect((await s.quota.usage('p')).reserved.instances).toBe(3);
        // past staleReservationMs: the killed process's reservations go, this engine's own
        // (settled long before it could be stale) is settled normally
        await s.quota.commit(mine);
        expect(await s.quota.expireStale(killedAt + 30_001)).toBe(2);
        const usage = await s.quota.usage('p');
        expect(usage.reserved).toEqual({ instances: 0, cores: 0, ramMb: 0 });
        expect(usage.inUse).toEqual({ instances: 1, cores: 1, ramMb: 128 });
        expect(await s.quota.expireStale(killedAt + 30_001)).toBe(0);
        await s.quota.commit(await s.quota.reserve('p', one));
        await s.quota.commit(await s.quota.reserve('p', one));
        expect((await s.quota.usage('p')).inUse.instances).toBe(3);
      } finally {
        await s.close();
        if (dialect === 'postgres') await dropSchema(location);
      }
    },
  );

  it('an engine that owns its database keeps reservations in memory: nothing to expire', async () => {
    const s = await openSqliteStores({ path: join(mkdtempSync(join(tmpdir(), 'nlfs-own-')), 'db.sqlite') });
    try {
      await s.quota.reserve('p', one);
      expect(await s.quota.expireStale(Date.now() + 3_600_000)).toBe(0);
      expect((await s.quota.usage('p')).reserved.instances).toBe(1);
    } finally {
      await s.close();
    }
  });
});
