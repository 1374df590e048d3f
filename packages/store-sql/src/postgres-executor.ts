import type pg from 'pg';
import type { SqlExecutor, SqlRunner, StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/**
 * {@link SqlExecutor} on `pg` pools. A single statement runs in autocommit on any pooled
 * connection; a unit of work takes one connection for `BEGIN` .. `COMMIT`. Statements run as
 * named prepared statements (parsed and planned once per connection).
 */
export class PostgresExecutor implements SqlExecutor {
  /** Per SQL text: its prepared-statement name and whether it writes (for the counters). */
  private readonly prepared = new Map<string, { readonly name: string; readonly writes: boolean }>();
  private readonly counters = { statements: 0, writes: 0, relaxed: 0, units: 0 };

  /**
   * @param pool connections for ordinary statements
   * @param relaxed connections with `synchronous_commit = off`, for {@link PostgresExecutor.runRelaxed}
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly relaxed: pg.Pool = pool,
  ) {}

  run<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    return this.query<R>(this.pool, statement);
  }

  runRelaxed<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    this.counters.relaxed++;
    return this.query<R>(this.relaxed, statement);
  }

  /**
   * Since opening: statements sent (each one round trip), writes among them (statements not
   * starting with `select`, units' `begin`/`commit` excluded), relaxed writes, units of work.
   */
  stats(): Readonly<{ statements: number; writes: number; relaxed: number; units: number }> {
    return { ...this.counters };
  }

  async unit<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    this.counters.units++;
    this.counters.statements += 2;
    try {
      await client.query('begin');
      const out = await fn({ run: <R>(s: BoundStatement) => this.query<R>(client, s) });
      await client.query('commit');
      return out;
    } catch (e) {
      await client.query('rollback').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  private async query<R>(on: pg.Pool | pg.PoolClient, s: BoundStatement): Promise<StatementResult<R>> {
    let known = this.prepared.get(s.sql);
    if (!known && this.prepared.size < 1000) {
      known = { name: `nlfs_${this.prepared.size}`, writes: !/^\s*select\b/i.test(s.sql) };
      this.prepared.set(s.sql, known);
    }
    this.counters.statements++;
    if (known?.writes ?? !/^\s*select\b/i.test(s.sql)) this.counters.writes++;
    const r = await on.query({
      ...(known ? { name: known.name } : {}),
      text: s.sql,
      values: s.parameters as unknown[],
    });
    return { rows: r.rows as R[], affected: r.rowCount ?? 0 };
  }
}
