import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, redactUrl } from './errors.js';
import { type Dialect, migrate } from './migrations.js';
import type { Database } from './schema.js';

/** An open database: the Kysely instance, its dialect and a name for messages. */
export interface SqlDatabase {
  readonly db: Kysely<Database>;
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
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(handle) }) });
  const schemaVersion = await migrate(db, 'sqlite', path).catch(async (e) => {
    await db.destroy();
    throw e;
  });
  return { db, dialect: 'sqlite', name: path, schemaVersion, close: () => db.destroy() };
}

/**
 * Kysely's SQLite driver prepares every statement anew; the engine runs the same few dozen
 * statements over and over, so prepared statements are kept per SQL text (bounded).
 */
function withStatementCache(handle: BetterSqlite3.Database): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return new Proxy(handle, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (text: string) => {
          let stmt = cache.get(text);
          if (!stmt) {
            stmt = target.prepare(text);
            if (cache.size < 500) cache.set(text, stmt);
          }
          return stmt;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
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
  return { db, dialect: 'postgres', name, schemaVersion, close: () => db.destroy() };
}

/**
 * Runs `fn` in a transaction that takes the write lock up front: `BEGIN IMMEDIATE` on SQLite (so
 * processes sharing the file serialise instead of failing on a lock upgrade), a normal
 * transaction on PostgreSQL (callers lock rows with `FOR UPDATE` or compare-and-set).
 */
export async function writeTransaction<T>(
  database: SqlDatabase,
  fn: (trx: Kysely<Database> | Transaction<Database>) => Promise<T>,
): Promise<T> {
  if (database.dialect === 'postgres') return database.db.transaction().execute(fn);
  return database.db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (e) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw e;
    }
  });
}
