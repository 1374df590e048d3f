import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteDialect, type SqliteStatement } from 'kysely';

/**
 * A better-sqlite3 database that prepares each distinct SQL text once: Kysely's SQLite driver
 * prepares every query it runs, which costs as much as running a small one. The driver runs one
 * query at a time per connection, so a cached statement is never used twice at once. At most
 * `max` statements are kept (least recently used dropped).
 */
export function statementCachingDatabase(handle: BetterSqlite3.Database, max = 256): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => {
      cache.clear();
      handle.close();
    },
    prepare: (sql: string) => {
      const hit = cache.get(sql);
      if (hit) {
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = handle.prepare(sql) as unknown as SqliteStatement;
      cache.set(sql, statement);
      if (cache.size > max) cache.delete(cache.keys().next().value as string);
      return statement;
    },
  };
}

/**
 * A Kysely instance over a SQLite file for a module's own tables (the REST API's database):
 * WAL, `synchronous = NORMAL`, a busy timeout for other processes, statements prepared once.
 */
export function openKyselySqlite<T extends object = object>(path: string): Kysely<T> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const handle = new BetterSqlite3(path);
  handle.pragma('journal_mode = WAL');
  handle.pragma('synchronous = NORMAL');
  handle.pragma('busy_timeout = 5000');
  return new Kysely<T>({ dialect: new SqliteDialect({ database: statementCachingDatabase(handle) }) });
}
