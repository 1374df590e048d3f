import { createHash } from 'node:crypto';
import { isNovaError } from '@nova-lfs/core';
import pg from 'pg';
import { isConflict, toStoreError } from './errors.js';
import { type GroupCommitStats, PostgresGroupCommit } from './postgres-group-commit.js';
import { runPipelined, toWireValues } from './postgres-pipeline.js';
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

/** How a {@link PostgresExecutor} sends statements. */
export interface PostgresExecutorOptions {
  /**
   * Group commit (default true): statements that arrive while a batch of their kind (durable
   * write, contended write, relaxed write, read) is on the wire go together in the next one, one
   * round trip and one commit between them. False sends every submission on its own.
   */
  readonly batching?: boolean;
  /** Names the database in errors (a redacted URL). Default `PostgreSQL`. */
  readonly database?: string;
}

/** What the executor knows of one SQL text. */
interface Known {
  /** Its protocol-level prepared-statement name (a digest of the text). */
  readonly name: string;
  readonly writes: boolean;
}

/** Times a statement (or statements submitted together) runs again after a deadlock or serialization failure. */
const CONFLICT_RETRIES = 10;

/**
 * {@link SqlExecutor} on `pg` pools. Every statement travels as a protocol-level prepared
 * statement (parsed once per connection, by name) with its values as bind parameters; no value
 * is ever written into SQL text. Statements run with group commit ({@link PostgresGroupCommit}):
 * durable writes, contended durable writes ({@link BoundStatement.contended}), relaxed writes and
 * reads each form batches, one in flight per kind, every batch one implicit transaction in one
 * round trip; the kinds' batches overlap, contended rows are only ever locked by one batch of
 * this executor at a time (no deadlock between its own batches). A statement that finds nothing
 * else waiting runs alone, in autocommit; statements submitted together without a batch run as a
 * pipeline of their own (one round trip, one implicit transaction). A unit of work takes one
 * connection for `BEGIN` .. `COMMIT`.
 *
 * Errors are typed: the server's refusals are `DatabaseStatementError` (a stable code per kind,
 * the SQLSTATE in `details`, the driver's error as `cause`), unsendable values
 * `InvalidParameterError`, lost connections `DatabaseUnavailableError`. A statement (or
 * statements submitted together) that loses a deadlock or serialization race is run again, up
 * to 10 times, before its `NLFS_DB_CONFLICT` error reaches the caller.
 */
export class PostgresExecutor implements SqlExecutor {
  /** Per SQL text: its prepared-statement name and whether it writes (for the counters). */
  private readonly prepared = new Map<string, Known>();
  private readonly counters = { statements: 0, writes: 0, relaxed: 0, units: 0, alone: 0 };
  private readonly writeBatches: PostgresGroupCommit | undefined;
  private readonly contendedBatches: PostgresGroupCommit | undefined;
  private readonly relaxedBatches: PostgresGroupCommit | undefined;
  private readonly readBatches: PostgresGroupCommit | undefined;
  private readonly database: string;

  /**
   * @param pool connections for ordinary statements
   * @param relaxed connections with `synchronous_commit = off`, for {@link PostgresExecutor.runRelaxed}
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly relaxed: pg.Pool = pool,
    options: PostgresExecutorOptions = {},
  ) {
    this.database = options.database ?? 'PostgreSQL';
    if (options.batching ?? true) {
      this.writeBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
      this.contendedBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
      this.relaxedBatches = new PostgresGroupCommit(relaxed, (s) => this.aloneAll(relaxed, s));
      this.readBatches = new PostgresGroupCommit(pool, (s) => this.aloneAll(pool, s));
    }
  }

  run<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    const known = this.count(statement);
    const batches = !known.writes
      ? this.readBatches
      : statement.contended
        ? this.contendedBatches
        : this.writeBatches;
    const out = batches
      ? batches.submit<Record<string, unknown>>(statement, known.name)
      : this.aloneAll(this.pool, [statement]).then((r) => r[0]!);
    return out.then(
      (r) => r as StatementResult<R>,
      (e) => this.fail(e),
    );
  }

  runRelaxed<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    this.counters.relaxed++;
    const known = this.count(statement);
    const out = this.relaxedBatches
      ? this.relaxedBatches.submit<Record<string, unknown>>(statement, known.name)
      : this.aloneAll(this.relaxed, [statement]).then((r) => r[0]!);
    return out.then(
      (r) => r as StatementResult<R>,
      (e) => this.fail(e),
    );
  }

  /** Statements, writes, units, round trips and batches since creation. */
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
    const out = batches
      ? batches.submitAll(statements.map((statement, i) => ({ statement, name: known[i]!.name })))
      : this.aloneAll(this.pool, statements);
    return out.catch((e) => this.fail(e));
  }

  async unit<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      return this.fail(e);
    }
    this.counters.units++;
    this.counters.statements += 2;
    this.counters.alone += 2;
    let broken: Error | undefined;
    /** Runs a driver call; its error typed (a connection that broke is not given back for reuse). */
    const driver = async <X>(call: () => Promise<X>): Promise<X> => {
      try {
        return await call();
      } catch (e) {
        if (!(e instanceof pg.DatabaseError) && !isNovaError(e)) broken = asError(e);
        return this.fail(e);
      }
    };
    try {
      await driver(() => client.query('begin'));
      const out = await fn({
        run: async <R>(s: BoundStatement) => {
          const known = this.count(s);
          this.counters.alone++;
          const [r] = await driver(() =>
            runPipelined(client, [{ name: known.name, sql: s.sql, values: toWireValues(s.parameters) }]),
          );
          return r as StatementResult<R>;
        },
      });
      await driver(() => client.query('commit'));
      return out;
    } catch (e) {
      // the driver's errors are typed already; an error of `fn` itself passes through
      if (!broken) await client.query('rollback').catch((r: unknown) => (broken = asError(r)));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /** Counts the statement; its prepared-statement name (remembered for up to 1,000 texts). */
  private count(s: BoundStatement): Known {
    let known = this.prepared.get(s.sql);
    if (!known) {
      known = { name: statementName(s.sql), writes: isWrite(s.sql) };
      if (this.prepared.size < 1000) this.prepared.set(s.sql, known);
    }
    this.counters.statements++;
    if (known.writes) this.counters.writes++;
    return known;
  }

  /**
   * Runs (counted) statements outside any batch, as one pipeline in one round trip: one in
   * autocommit, several as one implicit transaction. Runs them again after a deadlock or
   * serialization failure (nothing of them was kept).
   */
  private async aloneAll(
    on: pg.Pool,
    statements: readonly BoundStatement[],
  ): Promise<Array<StatementResult<Record<string, unknown>>>> {
    const pipelined = statements.map((s) => ({
      name: this.prepared.get(s.sql)?.name ?? statementName(s.sql),
      sql: s.sql,
      values: toWireValues(s.parameters),
    }));
    for (let attempt = 0; ; attempt++) {
      const client = await on.connect();
      this.counters.alone++;
      try {
        const results = await runPipelined(client, pipelined);
        client.release();
        return results;
      } catch (e) {
        if (!(e instanceof pg.DatabaseError)) {
          client.release(asError(e));
          throw e;
        }
        client.release();
        if (!isConflict(toStoreError(e, this.database)) || attempt >= CONFLICT_RETRIES) throw e;
      }
    }
  }

  /** Rejects with the typed form of a driver error. */
  private fail(e: unknown): never {
    throw toStoreError(e, this.database);
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

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
