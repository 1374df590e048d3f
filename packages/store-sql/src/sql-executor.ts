import type { BoundStatement } from './statement.js';

/** What a statement returned: its rows (for queries and `RETURNING`) and how many rows it changed. */
export interface StatementResult<R> {
  readonly rows: R[];
  readonly affected: number;
  /** SQLite: the rowid of the last row an insert wrote (its rows' rowids are consecutive). */
  readonly lastInsertId?: number;
}

/** Runs statements, one at a time. */
export interface SqlRunner {
  run<R = Record<string, unknown>>(statement: BoundStatement): Promise<StatementResult<R>>;
}

/**
 * Runs the stores' statements on one database. `run` executes one statement atomically; `unit`
 * runs a function's statements as one atomic unit of work (all commit or none does). Either
 * resolves only once what it wrote (and, on SQLite, anything it read from other units) is
 * committed, so nothing the caller acts on can be lost by a crash of this process.
 */
export interface SqlExecutor extends SqlRunner {
  unit<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * Runs statements in order as one atomic unit (all commit or none does), one result each. Unlike
   * {@link SqlExecutor.unit}, no statement needs an earlier one's result in JavaScript, so an
   * executor that batches sends them together: one round trip with the rest of a batch.
   */
  runAll(statements: readonly BoundStatement[]): Promise<Array<StatementResult<Record<string, unknown>>>>;
  /**
   * Runs one statement whose commit need not reach the disk before it resolves: for rows that are
   * derived (recomputed by reconciliation, such as quota usage sums) and hot (every operation of a
   * project updates them). Waiting for the disk while holding such a row's lock would serialise
   * every operation on the disk's flush time. The write is durable once any later write of this
   * process commits (PostgreSQL flushes its log in order), and a database crash that loses it
   * leaves a state reconciliation repairs. On SQLite this is {@link SqlRunner.run}.
   */
  runRelaxed<R = Record<string, unknown>>(statement: BoundStatement): Promise<StatementResult<R>>;
}
