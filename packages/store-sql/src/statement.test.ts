import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { PreparedStatement } from './statement.js';

interface Db {
  t: { id: string; n: number; tag: string };
}
const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });

describe('PreparedStatement', () => {
  it('binds named parameters wherever they occur, and keeps constants written into the query', () => {
    const stmt = PreparedStatement.of<{ id: string; n: number }>((p) =>
      db
        .updateTable('t')
        .set({ n: p('n'), tag: 'fixed' })
        .where('id', '=', p('id'))
        .where('n', '<', p('n')),
    );
    expect(stmt.sql).toBe('update "t" set "n" = ?, "tag" = ? where "id" = ? and "n" < ?');
    expect(stmt.bind({ id: 'a', n: 7 }).parameters).toEqual([7, 'fixed', 'a', 7]);
    expect(stmt.bind({ id: 'b', n: 1 }).parameters).toEqual([1, 'fixed', 'b', 1]);
  });

  it('compiles raw SQL fragments the same way', () => {
    const stmt = PreparedStatement.of<{ x: number }>((p) => ({
      compile: () => sql`select ${p('x')} + ${p('x')} as y`.compile(db),
    }));
    expect(stmt.sql).toBe('select ? + ? as y');
    expect(stmt.bind({ x: 3 }).parameters).toEqual([3, 3]);
  });
});
