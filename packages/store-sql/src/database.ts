import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigurationError } from '@nova-lfs/core';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, redactUrl, toStoreError } from './errors.js';
import { type Dialect, migrate } from './migrations.js';
import { PostgresExecutor } from './postgres-executor.js';
import type { Database } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';
import { SqliteExecutor } from './sqlite-executor.js';

/**
 * An open database: the executor the stores run their statements on, the Kysely instance that
 * builds them (and applies migrations), its dialect and a name for messages.
 */
export interface SqlDatabase {
  /** Builds queries; runs migrations. Stores execute through {@link SqlDatabase.exec}. */
  readonly db: Kysely<Database>;
  /** Runs statements and atomic units of work (group commit on SQLite). */
  readonly exec: SqlExecutor;
  readonly dialect: Dialect;
  /** Path or redacted URL. */
  readonly name: string;
  /** Schema version (name of the last migration applied). */
  readonly schemaVersion: string;
  /**
   * No other connection can use the database while this one is open (SQLite's exclusive locking
   * mode): stores may answer reads from what they wrote themselves.
   */
  readonly exclusive: boolean;
  close(): Promise<void>;
}

/** How long opening waits for a lock another connection holds (ms): an owner is told quickly. */
const OPEN_BUSY_TIMEOUT_MS = 1_500;
/** WAL pages after which a commit checkpoints (SQLite's default is 1,000). */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
/** How long a write waits for the lock on a shared file (ms). */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * Opens (creating it if needed) a SQLite database in WAL mode and applies migrations.
 *
 * By default the connection owns the file: SQLite's exclusive locking mode, taken at once and
 * held until `close()`, so a second process (or connection) opening it fails fast instead of
 * sharing it unknowingly. `shared: true` lets several connections use the file (each write
 * transaction waits for the write lock). `groupCommit: false` commits every write on its own
 * (see {@link SqliteExecutor}; default true).
 * @throws DatabaseUnavailableError naming the path (also when another process holds it);
 *   SchemaTooNewError
 */
export async function openSqlite(
  path: string,
  options: { readonly shared?: boolean; readonly groupCommit?: boolean } = {},
): Promise<SqlDatabase> {
  const exclusive = !options.shared && path !== ':memory:';
  let handle: BetterSqlite3.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    handle = new BetterSqlite3(path);
  } catch (e) {
    throw new DatabaseUnavailableError(path, { cause: e });
  }
  try {
    // exclusive before WAL: no shared-memory index, no file lock per transaction
    if (exclusive) handle.pragma('locking_mode = EXCLUSIVE');
    handle.pragma(`busy_timeout = ${OPEN_BUSY_TIMEOUT_MS}`);
    handle.pragma('journal_mode = WAL');
    handle.pragma('synchronous = NORMAL');
    handle.pragma('foreign_keys = ON');
    // units of a group that ran again after a failed unit, and groups on a shared file, run in
    // savepoints inside the group's transaction (SqliteExecutor): SQLite copies each page a
    // savepoint's statements first change into its sub-journal, which spills to a temporary
    // file past 64 KiB (two write syscalls per page). Kept in
    // memory, it is freed when the group commits. Only rollback within the open transaction
    // reads it, so durability is unchanged (a crash discards the uncommitted WAL frames).
    handle.pragma('temp_store = MEMORY');
    // checkpoint when the WAL holds 10,000 pages (~40 MiB at 4 KiB), not SQLite's 1,000: each
    // checkpoint copies every page changed since the last one into the database file and syncs
    // both files, inside the commit that crossed the threshold (blocking the event loop). Pages
    // that every group commit changes (sequences, usage rows, the ends of the logs' indexes) are
    // then copied once per 10,000 WAL pages, not per 1,000. Reopening after a crash reads that WAL.
    handle.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    if (exclusive) handle.exec('begin immediate; commit'); // takes the lock now, keeps it
    handle.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (e) {
    handle.close();
    const busy = (e as { code?: string }).code?.startsWith('SQLITE_BUSY');
    const cause = busy
      ? new Error(
          'database is locked: another process has it open (to share one file, open it with { shared: true } everywhere)',
          { cause: e },
        )
      : e;
    throw new DatabaseUnavailableError(path, { cause });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
  const schemaVersion = await migrate(db, 'sqlite', path).catch(async (e) => {
    await db.destroy();
    throw e;
  });
  const exec = new SqliteExecutor(handle, {
    groupCommit: options.groupCommit ?? true,
    shared: options.shared === true,
  });
  return {
    db,
    exec,
    dialect: 'sqlite',
    name: path,
    schemaVersion,
    exclusive,
    close: async () => {
      await exec.flush();
      await db.destroy();
    },
  };
}

/** Default `statement_timeout` of every PostgreSQL connection (ms). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

/** How {@link openPostgres} connects. */
export interface PostgresOpenOptions {
  /** PostgreSQL schema to use (created if missing; letters, digits and `_`); isolates test runs. */
  readonly schema?: string;
  /** Connections for ordinary statements (default 10; a quarter more, at least 2, for relaxed writes). */
  readonly poolSize?: number;
  /** Group commit (default true; see {@link PostgresExecutor}). */
  readonly batching?: boolean;
  /**
   * `statement_timeout` of every connection, in ms (default 30,000): the server cancels a statement
   * (or a batch) running longer, and its callers get `DatabaseStatementError` with code
   * `NLFS_DB_TIMEOUT`. 0 turns it off.
   */
  readonly statementTimeoutMs?: number;
}

/** What a PostgreSQL schema name may be: an unquoted identifier (it is written into SQL text). */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Connects to PostgreSQL (a pool), checks the connection and applies migrations. Every connection
 * gets `statement_timeout` (and the schema as its `search_path`).
 * @throws DatabaseUnavailableError naming the (redacted) URL; SchemaTooNewError; ConfigurationError
 *   (setting `storage.schema` or `storage.statementTimeoutMs`) for a schema that is not a plain
 *   identifier or a negative timeout
 */
export async function openPostgres(url: string, options: PostgresOpenOptions = {}): Promise<SqlDatabase> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new ConfigurationError(
      'storage.schema',
      `PostgreSQL schema ${JSON.stringify(options.schema)} is not accepted: use letters, digits and _ (at most 63, not starting with a digit)`,
    );
  }
  const timeout = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new ConfigurationError(
      'storage.statementTimeoutMs',
      `statementTimeoutMs ${String(timeout)} is not accepted: a whole number of milliseconds >= 0`,
    );
  }
  const name = redactUrl(url) + (options.schema ? ` (schema ${options.schema})` : '');
  const searchPath = options.schema ? `-c search_path=${options.schema}` : '';
  const connect = (max: number, extra = ''): pg.Pool => {
    const pool = new pg.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: 5000,
      ...(timeout > 0 ? { statement_timeout: timeout } : {}),
      ...(searchPath || extra ? { options: [searchPath, extra].filter(Boolean).join(' ') } : {}),
    });
    // an idle connection the server closed: the pool drops it and opens another when needed
    // (without a listener the pool's 'error' event would end the process)
    pool.on('error', () => undefined);
    return pool;
  };
  const pool = connect(options.poolSize ?? 10);
  try {
    const client = await pool.connect();
    try {
      if (options.schema) await client.query(`create schema if not exists "${options.schema}"`);
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new DatabaseUnavailableError(name, { cause: e });
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const schemaVersion = await migrate(db, 'postgres', name, options.schema).catch(async (e) => {
    await db.destroy();
    // SchemaTooNewError passes; a statement the server refused is typed, never a raw pg error
    throw toStoreError(e, name);
  });
  // statements whose commit need not wait for the disk (SqlExecutor.runRelaxed) get their own
  // few connections with synchronous_commit off
  const relaxed = connect(Math.max(2, Math.ceil((options.poolSize ?? 10) / 4)), '-c synchronous_commit=off');
  return {
    db,
    exec: new PostgresExecutor(pool, relaxed, { batching: options.batching ?? true, database: name }),
    dialect: 'postgres',
    name,
    schemaVersion,
    exclusive: false,
    close: async () => {
      await relaxed.end();
      await db.destroy();
    },
  };
}
