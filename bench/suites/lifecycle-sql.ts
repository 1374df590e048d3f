import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCompute } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import {
  openPostgresStores,
  openSqliteStores,
  PostgresExecutor,
  type PostgresExecutorStats,
  SqliteExecutor,
  type SqlStores,
} from '@nova-lfs/store-sql';
import pg from 'pg';
import { percentile, printReport } from '../report.js';

/**
 * `pnpm bench lifecycle --store sqlite|postgres [--pairs N] [--hosts N] [--concurrency N]`
 * (also `pnpm bench lifecycle-sql --store ...`): create+delete pairs through the engine on durable
 * stores, fake driver with zero latency. Targets (issue 4): >= 5,000 pairs/s on SQLite and
 * >= 1,000 on PostgreSQL over loopback.
 */
export default async function lifecycleSql(args: string[]): Promise<boolean> {
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
  };
  const store = opt('store', 'sqlite') as 'sqlite' | 'postgres';
  const pairs = Number(opt('pairs', store === 'sqlite' ? '20000' : '5000'));
  const hostCount = Number(opt('hosts', '100'));
  const concurrency = Number(opt('concurrency', '32'));
  const url = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';
  const schema = `bench_${process.pid}`;
  let stores: SqlStores;
  let where: string;
  if (store === 'sqlite') {
    where = join(mkdtempSync(join(tmpdir(), 'nlfs-bench-sql-')), 'db.sqlite');
    stores = await openSqliteStores({ path: where });
  } else {
    where = `${url.replace(/:[^:@/]*@/, ':***@')} schema ${schema}`;
    stores = await openPostgresStores({ url, schema, poolSize: concurrency + 2 });
  }
  try {
    const compute = await createCompute({
      stores: stores.stores,
      quota: stores.quota,
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
      hosts: Array.from({ length: hostCount }, (_, i) => ({
        id: `h${i}`,
        driver: new FakeDriver({ vcpus: 64, ramMb: 262_144 }),
      })),
    });
    await stores.quota.setLimits('bench', { instances: -1, cores: -1, ramMb: -1 });
    await compute.images.register(
      { id: 'img', name: 'img', diskFormat: 'raw', sha256: '3'.repeat(64) },
      { kind: 'bytes', bytes: new Uint8Array() },
    );
    const req = { name: 'bench', projectId: 'bench', userId: 'bench', flavorId: 'm1', imageId: 'img' };
    for (let i = 0; i < 200; i++) {
      const [vm] = await compute.create(req);
      await compute.delete(vm!.id);
    }
    const lat: number[] = [];
    const exec = stores.database.exec;
    const before = exec instanceof SqliteExecutor ? exec.stats() : undefined;
    const pgBefore = exec instanceof PostgresExecutor ? exec.stats() : undefined;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const worker = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const a = performance.now();
        const [vm] = await compute.create(req);
        if (vm!.vmState !== 'active') throw new Error(`create failed: ${vm!.fault?.message}`);
        await compute.delete(vm!.id);
        lat.push(performance.now() - a);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker(Math.floor(pairs / concurrency))));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const after = exec instanceof SqliteExecutor ? exec.stats() : undefined;
    const pgAfter = exec instanceof PostgresExecutor ? exec.stats() : undefined;
    const pgPerPair = (pick: (s: PostgresExecutorStats) => number) =>
      pgBefore && pgAfter ? round1((pick(pgAfter) - pick(pgBefore)) / lat.length) : 0;
    const batched = (k: 'writeBatches' | 'contendedBatches' | 'relaxedBatches' | 'readBatches') =>
      pgBefore && pgAfter
        ? round1(
            (pgAfter[k].batched - pgBefore[k].batched) /
              Math.max(1, pgAfter[k].batches - pgBefore[k].batches),
          )
        : 0;
    const perPair = (k: 'statements' | 'commits' | 'commitMs') =>
      before && after ? Math.round(((after[k] - before[k]) / lat.length) * 1000) / 1000 : undefined;
    lat.sort((a, b) => a - b);
    const left = (await stores.stores.instances.list()).length + (await stores.claims.list()).length;
    await compute.close();
    const target = store === 'sqlite' ? 5_000 : 1_000;
    return printReport(
      `lifecycle --store ${store}`,
      {
        store:
          store === 'sqlite'
            ? 'SQLite (better-sqlite3, WAL, synchronous=NORMAL)'
            : 'PostgreSQL 15 over loopback (pg pool)',
        database: where,
        scheduler: '@nova-lfs/scheduler (spread), claims in the SQL claim store',
        driver: 'FakeDriver, zero latency',
        hosts: hostCount,
        pairs: lat.length,
        concurrency,
      },
      {
        pairsPerSecond: {
          value: Math.round(lat.length / seconds),
          unit: 'pairs/s',
          target: { op: '>=', value: target },
        },
        p50PairLatency: { value: Math.round(percentile(lat, 50) * 1000) / 1000, unit: 'ms' },
        p99PairLatency: { value: Math.round(percentile(lat, 99) * 1000) / 1000, unit: 'ms' },
        engineCpuPerPair: {
          value: Math.round((cpu.user + cpu.system) / lat.length),
          unit: `µs (this process; ${Math.round((cpu.system / (cpu.user + cpu.system)) * 100)}% in the kernel)`,
        },
        ...(before
          ? {
              statementsPerPair: { value: perPair('statements')!, unit: 'statements' },
              commitsPerPair: { value: perPair('commits')!, unit: 'group commits' },
              commitTimePerPair: { value: perPair('commitMs')!, unit: 'ms' },
            }
          : {}),
        ...(pgBefore
          ? {
              statementsPerPair: { value: pgPerPair((x) => x.statements), unit: 'statements' },
              roundTripsPerPair: { value: pgPerPair((x) => x.roundTrips), unit: 'round trips' },
              durableWriteBatchesPerPair: {
                value: pgPerPair((x) => x.writeBatches.batches),
                unit: `commits of batched durable writes (${batched('writeBatches')} statements each)`,
              },
              contendedBatchesPerPair: {
                value: pgPerPair((x) => x.contendedBatches.batches),
                unit: `commits of batched claim writes (${batched('contendedBatches')} statements each)`,
              },
              relaxedBatchesPerPair: {
                value: pgPerPair((x) => x.relaxedBatches.batches),
                unit: `batches of relaxed writes (${batched('relaxedBatches')} statements each)`,
              },
              readBatchesPerPair: {
                value: pgPerPair((x) => x.readBatches.batches),
                unit: `batches of reads (${batched('readBatches')} statements each)`,
              },
              batchFallbacks: {
                // a count over the run, not per pair (a per-pair figure would round a few away)
                value: pgAfter ? fallbacksOf(pgAfter) - fallbacksOf(pgBefore) : 0,
                unit: 'batches failed on the server and re-run statement by statement',
              },
            }
          : {}),
        rowsLeftAfterRun: { value: left, unit: 'instances+claims', target: { op: '<=', value: 0 } },
      },
    );
  } finally {
    await stores.close();
    if (store === 'postgres') {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema if exists "${schema}" cascade`);
      await c.end();
    }
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Batches the server refused (re-run statement by statement), over every kind of batch. */
const fallbacksOf = (s: PostgresExecutorStats) =>
  s.writeBatches.fallbacks +
  s.contendedBatches.fallbacks +
  s.relaxedBatches.fallbacks +
  s.readBatches.fallbacks;
