import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type GroupCommitStats, PostgresGroupCommit } from './postgres-group-commit.js';
import type { SqlExecutor, SqlRunner, StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** Counters of a {@link PostgresExecutor} since it was created. */
export interface PostgresExecutorStats {
  /** Statements run (each in a batch, alone, or in a unit; units' `begin`/`commit` counted). */
  readonly statements: number;
  /** Writes among them (statements not starting with `select`; units' `begin`/`commit` excluded). */
  readonly writes: number;
  /** Writes run with {@link PostgresExecutor.runRelaxed}. */
  readonly relaxed: number;
  /** Units of work. */
  readonly units: number;
  /** Round trips to the server: batches, statements alone and statements of units. */
  readonly roundTrips: number;
  /** Batches of durable writes, contended durable writes, relaxed writes and reads. */
  readonly writeBatches: GroupCommitStats;
  readonly contendedBatches: GroupCommitStats;
  readonly relaxedBatches: GroupCommitStats;
  readonly readBatches: GroupCommitStats;
}

/** Whether statements are batched. */
export interface PostgresExecutorOptions {
  /**
   * Group commit (default true): statements that arrive while a batch of their kind (durable
   * write, contended write, relaxed write, read) is on the wire go together in the next one, one
   * round trip and one commit between them. False sends every statement on its own.
   */
  readonly batching?: boolean;
}

/** What the executor knows of one SQL text. */
interface Known {
  /** Its protocol-level prepared-statement name (statements run alone). */
  readonly name: string;
  /** Its SQL-level `PREPARE` name (statements in batches; one namespace per session with `name`). */
  readonly batchName: string;
  readonly writes: boolean;
}

/**
 * {@link SqlExecutor} on `pg` pools. Statements run with group commit ({@link PostgresGroupCommit}):
 * durable writes, contended durable writes ({@link BoundStatement.contended}), relaxed writes
 * and reads each form batches, one in flight per kind, every batch one transaction in one round
 * trip; the kinds' batches overlap, contended rows are only ever locked by one batch of this
 * executor at a time (no deadlock between its own batches). A statement that finds nothing else
 * waiting runs alone, in autocommit, as a named prepared statement (parsed and planned once per
 * connection).
 * A unit of work takes one connection for `BEGIN` .. `COMMIT`.
 */
export class PostgresExecutor implements SqlExecutor {
  /** Per SQL text: its prepared-statement name and whether it writes (for the counters). */
  private readonly prepared = new Map<string, Known>();
  private readonly counters = { statements: 0, writes: 0, relaxed: 0, units: 0, alone: 0 };
  private readonly writeBatches: PostgresGroupCommit | undefined;
  private readonly contendedBatches: PostgresGroupCommit | undefined;
  private readonly relaxedBatches: PostgresGroupCommit | undefined;
  private readonly readBatches: PostgresGroupCommit | undefined;

  /**
   * @param pool connections for ordinary statements
   * @param relaxed connections with `synchronous_commit = off`, for {@link PostgresExecutor.runRelaxed}
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly relaxed: pg.Pool = pool,
    options: PostgresExecutorOptions = {},
  ) {
    if (options.batching ?? true) {
      this.writeBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
      this.contendedBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
      this.relaxedBatches = new PostgresGroupCommit(relaxed, (s) => this.aloneAll(relaxed, s));
      this.readBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
    }
  }

  run<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    const known = this.count(statement);
    const batches = !known?.writes
      ? this.readBatches
      : statement.contended
        ? this.contendedBatches
        : this.writeBatches;
    if (!known || !batches) return this.alone<R>(this.pool, statement);
    return batches.submit<R>(statement, known.batchName);
  }

  runRelaxed<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    this.counters.relaxed++;
    const known = this.count(statement);
    if (!known || !this.relaxedBatches) return this.alone<R>(this.relaxed, statement);
    return this.relaxedBatches.submit<R>(statement, known.batchName);
  }

  stats(): PostgresExecutorStats {
    const none = { batches: 0, batched: 0, fallbacks: 0 };
    const writeBatches = this.writeBatches?.stats() ?? none;
    const contendedBatches = this.contendedBatches?.stats() ?? none;
    const relaxedBatches = this.relaxedBatches?.stats() ?? none;
    const readBatches = this.readBatches?.stats() ?? none;
    const { alone, ...rest } = this.counters;
    return {
      ...rest,
      roundTrips:
        alone +
        writeBatches.batches +
        contendedBatches.batches +
        relaxedBatches.batches +
        readBatches.batches,
      writeBatches,
      contendedBatches,
      relaxedBatches,
      readBatches,
    };
  }

  runAll(statements: readonly BoundStatement[]): Promise<Array<StatementResult<Record<string, unknown>>>> {
    const known = statements.map((s) => this.count(s));
    const batches = statements.some((s) => s.contended) ? this.contendedBatches : this.writeBatches;
    if (!batches || known.some((k) => !k)) return this.aloneAll(this.pool, statements);
    return batches.submitAll(statements.map((statement, i) => ({ statement, name: known[i]!.batchName })));
  }

  async unit<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.unitOn(this.pool, fn);
  }

  /** A unit on one of `pool`'s connections; `counted`: its statements were counted already. */
  private async unitOn<T>(pool: pg.Pool, fn: (tx: SqlRunner) => Promise<T>, counted = false): Promise<T> {
    const client = await pool.connect();
    this.counters.units++;
    this.counters.statements += 2;
    this.counters.alone += 2;
    try {
      await client.query('begin');
      const out = await fn({
        run: <R>(s: BoundStatement) => {
          if (!counted) this.count(s);
          return this.alone<R>(client, s);
        },
      });
      await client.query('commit');
      return out;
    } catch (e) {
      await client.query('rollback').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** Counts the statement; its prepared-statement name unless too many texts were seen already. */
  private count(s: BoundStatement): Known | undefined {
    let known = this.prepared.get(s.sql);
    if (!known && this.prepared.size < 1000) {
      const name = statementName(s.sql);
      known = { name, batchName: `${name}b`, writes: isWrite(s.sql) };
      this.prepared.set(s.sql, known);
    }
    this.counters.statements++;
    if (known?.writes ?? isWrite(s.sql)) this.counters.writes++;
    return known;
  }

  /** Runs (counted) statements outside any batch: one by itself, several in a unit of their own. */
  private aloneAll(
    on: pg.Pool,
    statements: readonly BoundStatement[],
  ): Promise<Array<StatementResult<Record<string, unknown>>>> {
    if (statements.length === 1)
      return this.alone<Record<string, unknown>>(on, statements[0]!).then((r) => [r]);
    return this.unitOn(
      on,
      async (tx) => {
        const results: Array<StatementResult<Record<string, unknown>>> = [];
        for (const s of statements) results.push(await tx.run(s));
        return results;
      },
      true,
    );
  }

  /** Runs one statement by itself (a round trip of its own), prepared by name when it has one. */
  private async alone<R>(on: pg.Pool | pg.PoolClient, s: BoundStatement): Promise<StatementResult<R>> {
    const known = this.prepared.get(s.sql);
    this.counters.alone++;
    const r = await on.query({
      ...(known ? { name: known.name } : {}),
      text: s.sql,
      values: s.parameters as unknown[],
    });
    return { rows: r.rows as R[], affected: r.rowCount ?? 0 };
  }
}

/**
 * A prepared-statement name that only this SQL text gets (a digest of it): prepared statements
 * live per connection, and a name that meant another text there would run that other statement.
 */
function statementName(sql: string): string {
  return `nlfs_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
}

/** Whether a statement writes (anything but a `select`). */
function isWrite(sql: string): boolean {
  return !/^\s*select\b/i.test(sql);
}
