import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, redactUrl } from './errors.js';
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
/** How long a write waits for the lock on a shared file (ms). */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * Opens (creating it if needed) a SQLite database in WAL mode and applies migrations.
 *
 * By default the connection owns the file: SQLite's exclusive locking mode, taken at once and
 * held until `close()`, so a second process (or connection) opening it fails fast instead of
 * sharing it unknowingly. `shared: true` lets several connections use the file (each write
 * transaction waits for the write lock).
 * @throws DatabaseUnavailableError naming the path (also when another process holds it);
 *   SchemaTooNewError
 */
export async function openSqlite(path: string, options: { shared?: boolean } = {}): Promise<SqlDatabase> {
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
  const exec = new SqliteExecutor(handle);
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

/**
 * Connects to PostgreSQL (a pool), checks the connection and applies migrations.
 * @param options.schema PostgreSQL schema to use (created if missing); isolates test runs.
 * @param options.batching group commit (default true; see {@link PostgresExecutor})
 * @throws DatabaseUnavailableError naming the (redacted) URL; SchemaTooNewError
 */
export async function openPostgres(
  url: string,
  options: { schema?: string; poolSize?: number; batching?: boolean } = {},
): Promise<SqlDatabase> {
  const name = redactUrl(url) + (options.schema ? ` (schema ${options.schema})` : '');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  try {
    const client = await pool.connect();
    try {
      if (options.schema)
        await client.query(`create schema if not exists "${options.schema.replace(/"/g, '')}"`);
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
    throw e;
  });
  // statements whose commit need not wait for the disk (SqlExecutor.runRelaxed) get their own
  // few connections with synchronous_commit off
  const relaxed = new pg.Pool({
    connectionString: url,
    max: Math.max(2, Math.ceil((options.poolSize ?? 10) / 4)),
    connectionTimeoutMillis: 5000,
    options: `${options.schema ? `-c search_path=${options.schema} ` : ''}-c synchronous_commit=off`,
  });
  return {
    db,
    exec: new PostgresExecutor(pool, relaxed, { batching: options.batching ?? true }),
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
