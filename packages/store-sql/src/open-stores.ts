import { join } from 'node:path';
import {
  ConfigurationError,
  defaultQuotaLimits,
  type InstanceEvent,
  parseInput,
  type QuotaLimits,
  quotaLimitsSchema,
  type StorageOption,
} from '@nova-lfs/core';
import { type CoreStores, type DurableStorage, parseStorageOption } from '@nova-lfs/core/ports';
import type { Observable, Subscription } from 'rxjs';
import { openPostgres, openSqlite, type SqlDatabase } from './database.js';
import { SqlActionStore } from './sql-action-store.js';
import { SqlFlavorStore, SqlHostStore, SqlServerGroupStore } from './sql-catalog-stores.js';
import { SqlClaimStore } from './sql-claim-store.js';
import { SqlEventLog } from './sql-event-log.js';
import { SqlEventStore } from './sql-event-store.js';
import { SqlImageStore } from './sql-image-store.js';
import { SqlInstanceStore } from './sql-instance-store.js';
import { SqlLeaseStore } from './sql-lease-store.js';
import { SqlMigrationStore } from './sql-migration-store.js';
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
  /**
   * Events recorded from a stream into the same log ({@link SqlStores.recordEvents}); not for an
   * engine's own `events$`, which its units of work log already.
   */
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
  const quota = new SqlQuotaEngine(
    database,
    options.quotaDefaults ?? defaultQuotaLimits,
    options.staleReservationMs ?? 30_000,
  );
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
      unit: new SqlUnitOfWork(database, { instances, actions, groups, eventLog, quota }),
      events: eventLog,
      leases: new SqlLeaseStore(database),
      migrations: new SqlMigrationStore(database),
      // a SQLite file held exclusively has one engine: what is not running in it is a leftover
      exclusive: database.exclusive,
    },
    eventLog,
    quota,
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
 * default 30 s). `groupCommit: false` commits every write on its own (default true).
 * @throws DatabaseUnavailableError naming the file; SchemaTooNewError; ValidationError for
 *   invalid `quotaDefaults`
 */
export async function openSqliteStores(
  options: SqlStoreOptions & {
    path?: string;
    dataDir?: string;
    shared?: boolean;
    groupCommit?: boolean;
  } = {},
): Promise<SqlStores> {
  const path =
    options.path ??
    join(
      options.dataDir ?? process.env.NOVA_LFS_DATA_DIR ?? join(process.cwd(), '.nova-lfs'),
      'nova-lfs.sqlite',
    );
  const defaults = validDefaults(options.quotaDefaults);
  const database = await openSqlite(path, {
    shared: options.shared ?? false,
    ...(options.groupCommit !== undefined ? { groupCommit: options.groupCommit } : {}),
  });
  return wrap(database, {
    staleReservationMs: options.shared ? 30_000 : 0,
    ...options,
    quotaDefaults: defaults,
  });
}

/** Options of {@link openPostgresStores}. */
export interface PostgresStoreOptions extends SqlStoreOptions {
  /** The server's URL. Default `$NOVA_LFS_PG_URL`; one of the two is required. */
  readonly url?: string;
  /** PostgreSQL schema (created if missing): letters, digits and `_`. Default the server's `search_path`. */
  readonly schema?: string;
  /** Connections for ordinary statements (default 10). */
  readonly poolSize?: number;
  /** Group commit (default true); false sends every statement on its own. */
  readonly batching?: boolean;
  /** `statement_timeout` of every connection in ms (default 30,000; 0 turns it off). */
  readonly statementTimeoutMs?: number;
}

/**
 * Opens the PostgreSQL stores at `url`, else `$NOVA_LFS_PG_URL` (there is no default server).
 * Statements are group-committed (`PostgresExecutor`); `batching: false` sends each on its own.
 * @throws ConfigurationError (setting `storage.url`) when neither `url` nor `$NOVA_LFS_PG_URL` is
 *   set; DatabaseUnavailableError naming the URL (password redacted); SchemaTooNewError;
 *   ValidationError for invalid `quotaDefaults`
 */
export async function openPostgresStores(options: PostgresStoreOptions = {}): Promise<SqlStores> {
  const url = options.url ?? process.env.NOVA_LFS_PG_URL;
  if (!url) {
    throw new ConfigurationError(
      'storage.url',
      "PostgreSQL storage needs a server: pass storage: { kind: 'postgres', url } (or url to openPostgresStores), or set $NOVA_LFS_PG_URL",
    );
  }
  const defaults = validDefaults(options.quotaDefaults);
  return wrap(
    await openPostgres(url, {
      ...(options.schema !== undefined ? { schema: options.schema } : {}),
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
      ...(options.batching !== undefined ? { batching: options.batching } : {}),
      ...(options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
    }),
    { ...options, quotaDefaults: defaults },
  );
}

/** Quota defaults checked before a database is opened. */
function validDefaults(limits: QuotaLimits | undefined): QuotaLimits {
  return limits === undefined ? defaultQuotaLimits : parseInput(quotaLimitsSchema, limits);
}

/**
 * Opens the storage a {@link StorageOption} names (`createCompute` calls this when no `stores`
 * are given): `'sqlite'` or `{ kind: 'sqlite', dataDir?, path? }` as {@link openSqliteStores},
 * `{ kind: 'postgres', url?, schema?, statementTimeoutMs?, staleReservationMs? }` as
 * {@link openPostgresStores}. The
 * option is checked first: a typo opens nothing.
 * @throws ConfigurationError (setting `storage`) for an option that is not a durable
 *   `StorageOption` (naming what was given and what is accepted), or (setting `storage.url`) for
 *   PostgreSQL without a URL; DatabaseUnavailableError naming the file or URL; SchemaTooNewError
 */
export async function openStorage(given: Exclude<StorageOption, 'memory'>): Promise<SqlStores> {
  const option = parseStorageOption(given);
  if (option === 'memory') {
    throw new ConfigurationError(
      'storage',
      "storage 'memory' has nothing to open in @nova-lfs/store-sql: createCompute keeps it in memory itself",
    );
  }
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
    ...(option.statementTimeoutMs !== undefined ? { statementTimeoutMs: option.statementTimeoutMs } : {}),
    ...(option.staleReservationMs !== undefined ? { staleReservationMs: option.staleReservationMs } : {}),
  });
}
