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
  close(): Promise<void>;
}

/**
 * Opens (creating it if needed) a SQLite database in WAL mode and applies migrations.
 * @throws DatabaseUnavailableError naming the path; SchemaTooNewError
 */
export async function openSqlite(path: string): Promise<SqlDatabase> {
  let handle: BetterSqlite3.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    handle = new BetterSqlite3(path);
    handle.pragma('journal_mode = WAL');
    handle.pragma('synchronous = NORMAL');
    handle.pragma('busy_timeout = 10000');
    handle.pragma('foreign_keys = ON');
  } catch (e) {
    throw new DatabaseUnavailableError(path, { cause: e });
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
    close: async () => {
      await exec.flush();
      await db.destroy();
    },
  };
}

/**
 * Connects to PostgreSQL (a pool), checks the connection and applies migrations.
 * @param options.schema PostgreSQL schema to use (created if missing); isolates test runs.
 * @throws DatabaseUnavailableError naming the (redacted) URL; SchemaTooNewError
 */
export async function openPostgres(
  url: string,
  options: { schema?: string; poolSize?: number } = {},
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
    exec: new PostgresExecutor(pool, relaxed),
    dialect: 'postgres',
    name,
    schemaVersion,
    close: async () => {
      await relaxed.end();
      await db.destroy();
    },
  };
}
