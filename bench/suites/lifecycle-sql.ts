import { mkdtempSync, rmSync } from 'node:fs';
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

/** What one measured run on one store gave. */
interface Run {
  readonly pairs: number;
  readonly seconds: number;
  /** Sorted pair latencies (ms). */
  readonly lat: number[];
  readonly cpu: NodeJS.CpuUsage;
  readonly sqlite?: { before: SqliteStats; after: SqliteStats };
  readonly pg?: { before: PostgresExecutorStats; after: PostgresExecutorStats };
  /** Instances and claims left after every pair was deleted. */
  readonly left: number;
}

type SqliteStats = ReturnType<SqliteExecutor['stats']>;

/**
 * `pnpm bench lifecycle --store sqlite|postgres [--pairs N] [--hosts N] [--concurrency N]`
 * (also `pnpm bench lifecycle-sql --store ...`): create+delete pairs through the engine on durable
 * stores, fake driver with zero latency, measured twice in one run on fresh databases: with
 * batching (group commit) and without it (SQLite: one commit per write; PostgreSQL: every
 * submission on its own). Targets (issues 4 and 11): >= 5,000 pairs/s on SQLite and >= 1,000 on
 * PostgreSQL over loopback, batched >= 3x unbatched.
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
  // the benchmark's own default server (the SDK itself has none)
  const url = process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';
  const where =
    store === 'sqlite'
      ? mkdtempSync(join(tmpdir(), 'nlfs-bench-sql-'))
      : `${url.replace(/:[^:@/]*@/, ':***@')} schemas bench_${process.pid}_b / _u`;
  const schemaOf = (batching: boolean) => `bench_${process.pid}_${batching ? 'b' : 'u'}`;
  const open = (batching: boolean): Promise<SqlStores> =>
    store === 'sqlite'
      ? openSqliteStores({ path: join(where, `${batching ? 'b' : 'u'}.sqlite`), groupCommit: batching })
      : openPostgresStores({ url, schema: schemaOf(batching), poolSize: concurrency + 2, batching });
  const measure = (batching: boolean) =>
    run(open(batching), {
      pairs,
      hostCount,
      concurrency,
      dropSchema: store === 'postgres' ? { url, schema: schemaOf(batching) } : undefined,
    });
  let batched: Run;
  let unbatched: Run;
  try {
    batched = await measure(true);
    unbatched = await measure(false);
  } finally {
    // the two database files (hundreds of MiB after a run) are the run's own
    if (store === 'sqlite') rmSync(where, { recursive: true, force: true });
  }
  const lat = batched.lat;
  const pairsPerSecond = Math.round(batched.pairs / batched.seconds);
  const unbatchedPairsPerSecond = Math.round(unbatched.pairs / unbatched.seconds);
  const ratio = Math.round((pairsPerSecond / unbatchedPairsPerSecond) * 100) / 100;
  const before = batched.sqlite?.before;
  const after = batched.sqlite?.after;
  const pgBefore = batched.pg?.before;
  const pgAfter = batched.pg?.after;
  const cpu = batched.cpu;
  const pgPerPair = (pick: (s: PostgresExecutorStats) => number) =>
    pgBefore && pgAfter ? round1((pick(pgAfter) - pick(pgBefore)) / lat.length) : 0;
  const batchedPer = (k: 'writeBatches' | 'contendedBatches' | 'relaxedBatches' | 'readBatches') =>
    pgBefore && pgAfter
      ? round1(
          (pgAfter[k].batched - pgBefore[k].batched) / Math.max(1, pgAfter[k].batches - pgBefore[k].batches),
        )
      : 0;
  const perPair = (k: 'statements' | 'savepoints' | 'commits' | 'commitMs') =>
    before && after ? Math.round(((after[k] - before[k]) / lat.length) * 1000) / 1000 : undefined;
  const unbatchedPerPair = (k: 'commits') =>
    unbatched.sqlite
      ? Math.round(((unbatched.sqlite.after[k] - unbatched.sqlite.before[k]) / unbatched.pairs) * 1000) / 1000
      : undefined;
  const unbatchedRoundTrips = unbatched.pg
    ? round1((unbatched.pg.after.roundTrips - unbatched.pg.before.roundTrips) / unbatched.pairs)
    : undefined;
  const target = store === 'sqlite' ? 5_000 : 1_000;
  return printReport(
    `lifecycle --store ${store}`,
    {
      store:
        store === 'sqlite'
          ? 'SQLite (better-sqlite3, WAL, synchronous=NORMAL)'
          : 'PostgreSQL 15 over loopback (pg pools, extended protocol, bind parameters)',
      database: where,
      scheduler: '@nova-lfs/scheduler (spread), claims in the SQL claim store',
      driver: 'FakeDriver, zero latency',
      hosts: hostCount,
      pairs: lat.length,
      concurrency,
      unbatched:
        store === 'sqlite'
          ? 'the same on a fresh file with group commit off (one commit per write), measured after the batched run'
          : 'the same on a fresh schema with batching off (every submission on its own), measured after the batched run',
    },
    {
      pairsPerSecond: {
        value: pairsPerSecond,
        unit: 'pairs/s',
        target: { op: '>=', value: target },
      },
      unbatchedPairsPerSecond: { value: unbatchedPairsPerSecond, unit: 'pairs/s (batching off)' },
      batchedOverUnbatched: { value: ratio, unit: 'x', target: { op: '>=', value: 3 } },
      p50PairLatency: { value: Math.round(percentile(lat, 50) * 1000) / 1000, unit: 'ms' },
      p99PairLatency: { value: Math.round(percentile(lat, 99) * 1000) / 1000, unit: 'ms' },
      unbatchedP99PairLatency: {
        value: Math.round(percentile(unbatched.lat, 99) * 1000) / 1000,
        unit: 'ms (batching off)',
      },
      engineCpuPerPair: {
        value: Math.round((cpu.user + cpu.system) / lat.length),
        unit: `µs (this process; ${Math.round((cpu.system / (cpu.user + cpu.system)) * 100)}% in the kernel)`,
      },
      ...(before
        ? {
            statementsPerPair: { value: perPair('statements')!, unit: 'statements' },
            savepointsPerPair: { value: perPair('savepoints')!, unit: 'savepoints' },
            groupReplays: {
              // a count over the run: groups undone and run again after a unit failed in them
              value: after!.replays - before.replays,
              unit: 'groups run again after a failed unit',
            },
            commitsPerPair: { value: perPair('commits')!, unit: 'group commits' },
            commitTimePerPair: { value: perPair('commitMs')!, unit: 'ms' },
            unbatchedCommitsPerPair: { value: unbatchedPerPair('commits')!, unit: 'commits (batching off)' },
          }
        : {}),
      ...(pgBefore
        ? {
            statementsPerPair: { value: pgPerPair((x) => x.statements), unit: 'statements' },
            roundTripsPerPair: { value: pgPerPair((x) => x.roundTrips), unit: 'round trips' },
            unbatchedRoundTripsPerPair: { value: unbatchedRoundTrips!, unit: 'round trips (batching off)' },
            durableWriteBatchesPerPair: {
              value: pgPerPair((x) => x.writeBatches.batches),
              unit: `commits of batched durable writes (${batchedPer('writeBatches')} statements each)`,
            },
            contendedBatchesPerPair: {
              value: pgPerPair((x) => x.contendedBatches.batches),
              unit: `commits of batched claim writes (${batchedPer('contendedBatches')} statements each)`,
            },
            relaxedBatchesPerPair: {
              value: pgPerPair((x) => x.relaxedBatches.batches),
              unit: `batches of relaxed writes (${batchedPer('relaxedBatches')} statements each)`,
            },
            readBatchesPerPair: {
              value: pgPerPair((x) => x.readBatches.batches),
              unit: `batches of reads (${batchedPer('readBatches')} statements each)`,
            },
            batchFallbacks: {
              // a count over the run, not per pair (a per-pair figure would round a few away)
              value: pgAfter ? fallbacksOf(pgAfter) - fallbacksOf(pgBefore) : 0,
              unit: 'batches failed on the server and re-run statement by statement',
            },
          }
        : {}),
      rowsLeftAfterRun: {
        value: batched.left + unbatched.left,
        unit: 'instances+claims (both runs)',
        target: { op: '<=', value: 0 },
      },
    },
  );
}

/**
 * Runs `pairs` create+delete pairs from `concurrency` callers on freshly opened stores (after 200
 * warm-up pairs), then closes them (and drops the PostgreSQL schema `dropSchema` names).
 */
async function run(
  opening: Promise<SqlStores>,
  o: {
    pairs: number;
    hostCount: number;
    concurrency: number;
    dropSchema: { url: string; schema: string } | undefined;
  },
): Promise<Run> {
  const stores = await opening;
  try {
    const compute = await createCompute({
      stores: stores.stores,
      quota: stores.quota,
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
      hosts: Array.from({ length: o.hostCount }, (_, i) => ({
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
    const sqliteBefore = exec instanceof SqliteExecutor ? exec.stats() : undefined;
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
    await Promise.all(
      Array.from({ length: o.concurrency }, () => worker(Math.floor(o.pairs / o.concurrency))),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const sqliteAfter = exec instanceof SqliteExecutor ? exec.stats() : undefined;
    const pgAfter = exec instanceof PostgresExecutor ? exec.stats() : undefined;
    lat.sort((a, b) => a - b);
    const left = (await stores.stores.instances.list()).length + (await stores.claims.list()).length;
    await compute.close();
    return {
      pairs: lat.length,
      seconds,
      lat,
      cpu,
      ...(sqliteBefore && sqliteAfter ? { sqlite: { before: sqliteBefore, after: sqliteAfter } } : {}),
      ...(pgBefore && pgAfter ? { pg: { before: pgBefore, after: pgAfter } } : {}),
      left,
    };
  } finally {
    await stores.close();
    if (o.dropSchema) {
      const c = new pg.Client({ connectionString: o.dropSchema.url });
      await c.connect();
      await c.query(`drop schema if exists "${o.dropSchema.schema}" cascade`);
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
