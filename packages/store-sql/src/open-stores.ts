import { join } from 'node:path';
import {
  type CoreStores,
  type DurableStorage,
  defaultQuotaLimits,
  type InstanceEvent,
  type QuotaLimits,
  type StorageOption,
} from '@nova-lfs/core';
import type { Observable, Subscription } from 'rxjs';
import { openPostgres, openSqlite, type SqlDatabase } from './database.js';
import { SqlActionStore } from './sql-action-store.js';
import { SqlFlavorStore, SqlHostStore, SqlServerGroupStore } from './sql-catalog-stores.js';
import { SqlClaimStore } from './sql-claim-store.js';
import { SqlEventLog } from './sql-event-log.js';
import { SqlEventStore } from './sql-event-store.js';
import { SqlInstanceStore } from './sql-instance-store.js';
import { SqlLeaseStore } from './sql-lease-store.js';
import { SqlQuotaEngine } from './sql-quota-engine.js';
import { SqlUnitOfWork } from './sql-unit-of-work.js';

/**
 * Stores, quota and event log on one database, ready for `createCompute({ stores, quota })`, or
 * opened by `createCompute` itself ({@link openStorage}).
 */
export interface SqlStores extends DurableStorage {
  readonly database: SqlDatabase;
  readonly stores: Required<CoreStores>;
  readonly claims: SqlClaimStore;
  readonly quota: SqlQuotaEngine;
  /** The durable event log (also `stores.events`), written by `stores.unit`. */
  readonly eventLog: SqlEventLog;
  /** Events recorded from an engine's stream ({@link SqlStores.recordEvents}) into the same log. */
  readonly events: SqlEventStore;
  /** Persists every event of the stream in order; `close()` waits for the writes. */
  recordEvents(events$: Observable<InstanceEvent>): void;
  /** Stops recording, writes pending events and closes the database. */
  close(): Promise<void>;
}

/** Options shared by both dialects. */
export interface SqlStoreOptions {
  /** Default quota limits. */
  readonly quotaDefaults?: QuotaLimits;
  /**
   * Reservations older than this are dropped by reconciliation as abandoned by a crashed process.
   * Use 0 when one engine owns the database (embedded mode). Default 30,000 ms.
   */
  readonly staleReservationMs?: number;
}

function wrap(database: SqlDatabase, options: SqlStoreOptions): SqlStores {
  const claims = new SqlClaimStore(database);
  const eventLog = new SqlEventLog(database);
  const events = new SqlEventStore(database, eventLog);
  const recordings: Subscription[] = [];
  const instances = new SqlInstanceStore(database);
  const actions = new SqlActionStore(database);
  const groups = new SqlServerGroupStore(database);
  return {
    location: `${database.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${database.name}`,
    database,
    claims,
    stores: {
      instances,
      hosts: new SqlHostStore(database),
      claims,
      actions,
      flavors: new SqlFlavorStore(database),
      groups,
      images: new SqlImageStore(database),
      unit: new SqlUnitOfWork(database, { instances, actions, groups, eventLog }),
      events: eventLog,
      leases: new SqlLeaseStore(database),
    },
    eventLog,
    quota: new SqlQuotaEngine(
      database,
      options.quotaDefaults ?? defaultQuotaLimits,
      options.staleReservationMs ?? 30_000,
    ),
    events,
    recordEvents: (events$) => {
      recordings.push(events.record(events$));
    },
    close: async () => {
      for (const r of recordings.splice(0)) r.unsubscribe();
      await events.flush();
      await database.close();
    },
  };
}

/**
 * Opens the embedded SQLite stores: `path`, or `<dataDir>/nova-lfs.sqlite`, or
 * `$NOVA_LFS_DATA_DIR/nova-lfs.sqlite`, or `./.nova-lfs/nova-lfs.sqlite`.
 *
 * By default this engine owns the file (exclusive lock; another process opening it gets
 * `DatabaseUnavailableError`): reservations are kept in memory and catalog and instance reads
 * are answered from what the stores wrote. `shared: true` lets several processes use one file
 * (every read goes to the file; reservations have rows, stale after `staleReservationMs`,
 * default 30 s).
 * @throws DatabaseUnavailableError naming the file; SchemaTooNewError
 */
export async function openSqliteStores(
  options: SqlStoreOptions & { path?: string; dataDir?: string; shared?: boolean } = {},
): Promise<SqlStores> {
  const path =
    options.path ??
    join(
      options.dataDir ?? process.env.NOVA_LFS_DATA_DIR ?? join(process.cwd(), '.nova-lfs'),
      'nova-lfs.sqlite',
    );
  const database = await openSqlite(path, { shared: options.shared ?? false });
  return wrap(database, { staleReservationMs: options.shared ? 30_000 : 0, ...options });
}

/**
 * Opens the PostgreSQL stores at `url` (default `$NOVA_LFS_PG_URL`). Statements are group-committed
 * (`PostgresExecutor`); `batching: false` sends each on its own.
 * @throws DatabaseUnavailableError naming the URL (password redacted); SchemaTooNewError
 */
export async function openPostgresStores(
  options: SqlStoreOptions & { url?: string; schema?: string; poolSize?: number; batching?: boolean } = {},
): Promise<SqlStores> {
  const url = options.url ?? process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test';
  return wrap(
    await openPostgres(url, {
      ...(options.schema ? { schema: options.schema } : {}),
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
      ...(options.batching !== undefined ? { batching: options.batching } : {}),
    }),
    options,
  );
}

/**
 * Opens the storage a {@link StorageOption} names (`createCompute` calls this when no `stores`
 * are given): `'sqlite'` or `{ kind: 'sqlite', dataDir?, path? }` as {@link openSqliteStores},
 * `{ kind: 'postgres', url?, schema? }` as {@link openPostgresStores}.
 * @throws DatabaseUnavailableError naming the file or URL; SchemaTooNewError
 */
export async function openStorage(option: Exclude<StorageOption, 'memory'>): Promise<SqlStores> {
  if (option === 'sqlite') return openSqliteStores();
  if (option.kind === 'sqlite') {
    return openSqliteStores({
      ...(option.path ? { path: option.path } : {}),
      ...(option.dataDir ? { dataDir: option.dataDir } : {}),
    });
  }
  return openPostgresStores({
    ...(option.url ? { url: option.url } : {}),
    ...(option.schema ? { schema: option.schema } : {}),
  });
}
