import pg from 'pg';
import { type PipelinedStatement, runPipelined, toWireValues } from './postgres-pipeline.js';
import type { StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** A statement of a submission, with its prepared-statement name. */
interface Member {
  readonly statement: BoundStatement;
  readonly name: string;
}

/** One submission waiting for a batch: a statement, or statements that commit together. */
interface Pending {
  readonly members: readonly Member[];
  resolve(results: Array<StatementResult<Record<string, unknown>>>): void;
  reject(e: unknown): void;
}

/**
 * Runs statements outside any batch: one in autocommit, several in a transaction of their own.
 * Resolves with one result per statement.
 */
export type RunAlone = (
  statements: readonly BoundStatement[],
) => Promise<Array<StatementResult<Record<string, unknown>>>>;

/** How a {@link PostgresGroupCommit} batches. */
export interface GroupCommitOptions {
  /** Submissions per batch at most (statements submitted together count once). Default 256. */
  readonly maxBatch?: number;
}

/** Counters since creation. */
export interface GroupCommitStats {
  /** Batches sent (each one round trip and, when it wrote, one commit). */
  readonly batches: number;
  /** Statements that went in batches. */
  readonly batched: number;
  /** Batches that failed on the server and whose statements were then run one by one. */
  readonly fallbacks: number;
}

/**
 * Group commit for PostgreSQL: statements submitted while a batch is on the wire wait, and the
 * next batch sends all of them in one round trip as one pipeline of the extended query protocol
 * ({@link runPipelined}: Parse where the connection lacks the statement, Bind with the values,
 * Execute, per statement; one Sync at the end), which the server runs as one implicit
 * transaction. Each statement is prepared once per connection (protocol-level, by name) and its
 * values travel only as bind parameters: no value is ever written into SQL text.
 *
 * Every caller's promise settles after its batch committed, so nothing it acts on can be lost.
 * Statements of one batch commit together: if one fails on the server (a duplicate key, a
 * deadlock, a deferred constraint at the commit), the server stops there and keeps nothing of
 * the batch, and every submission of the batch is run again on its own (`alone`), so each
 * caller gets its own result or error. {@link PostgresGroupCommit.submitAll} submits statements
 * that must commit together: they go into a batch next to each other (after a refused batch: in
 * a transaction of their own). A submission whose values cannot be sent (a NUL byte in a string)
 * fails alone with `InvalidParameterError` before the batch goes out. A connection that breaks
 * mid-batch rejects the batch's callers with that error (whether the commit happened is then
 * unknown, as for any statement).
 *
 * A lone statement (nothing else waiting) goes through `alone` as it would without batching;
 * statements submitted together always go as a batch (one round trip, not one per statement).
 */
export class PostgresGroupCommit {
  private readonly queue: Pending[] = [];
  /** A batch is on the wire (one at a time). */
  private sending = false;
  private scheduled = false;
  private readonly counters = { batches: 0, batched: 0, fallbacks: 0 };
  private readonly maxBatch: number;

  /**
   * @param pool connections the batches run on
   * @param alone runs a submission outside any batch (the path without batching)
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly alone: RunAlone,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
  }

  /**
   * Runs `statement` in the next batch.
   * @param name the statement's prepared-statement name on this pool's connections (one per SQL text)
   */
  submit<R>(statement: BoundStatement, name: string): Promise<StatementResult<R>> {
    return this.enqueue([{ statement, name }]).then((results) => results[0] as StatementResult<R>);
  }

  /**
   * Runs statements in order as one atomic unit in the next batch (each with its
   * prepared-statement name): all commit or none does. One result per statement.
   */
  submitAll(
    members: ReadonlyArray<{ statement: BoundStatement; name: string }>,
  ): Promise<Array<StatementResult<Record<string, unknown>>>> {
    return this.enqueue(members);
  }

  private enqueue(members: readonly Member[]): Promise<Array<StatementResult<Record<string, unknown>>>> {
    return new Promise((resolve, reject) => {
      this.queue.push({ members, resolve, reject });
      this.schedule();
    });
  }

  /** Batches, batched statements and fallbacks since creation. */
  stats(): GroupCommitStats {
    return { ...this.counters };
  }

  /** Dispatches on the next turn, so everything submitted in this one can share a batch. */
  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    void this.send(this.queue.splice(0, this.maxBatch)).finally(() => {
      this.sending = false;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async send(submitted: Pending[]): Promise<void> {
    if (submitted.length === 1 && submitted[0]!.members.length === 1) {
      // a lone statement: autocommit, no batch around it
      await this.runAlone(submitted[0]!);
      return;
    }
    // a submission whose values cannot be sent fails alone, before anything goes out
    const batch: Array<{ pending: Pending; statements: PipelinedStatement[] }> = [];
    for (const pending of submitted) {
      try {
        batch.push({
          pending,
          statements: pending.members.map((m) => ({
            name: m.name,
            sql: m.statement.sql,
            values: toWireValues(m.statement.parameters),
          })),
        });
      } catch (e) {
        pending.reject(e);
      }
    }
    if (batch.length === 0) return;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      for (const { pending } of batch) pending.reject(e);
      return;
    }
    const statements = batch.flatMap((b) => b.statements);
    this.counters.batches++;
    this.counters.batched += statements.length;
    let results: Array<StatementResult<Record<string, unknown>>>;
    try {
      results = await runPipelined(client, statements);
    } catch (failed) {
      if (!(failed instanceof pg.DatabaseError)) {
        // the connection broke: whether the commit happened is unknown, as for any statement
        client.release(asError(failed));
        for (const { pending } of batch) pending.reject(failed);
        return;
      }
      // the server refused: it kept nothing of the batch. Give the connection back first (a
      // small pool would otherwise have none left for the retries), then run each submission
      // on its own.
      this.counters.fallbacks++;
      client.release();
      await Promise.all(batch.map(({ pending }) => this.runAlone(pending)));
      return;
    }
    client.release();
    let next = 0;
    for (const { pending, statements: own } of batch) {
      pending.resolve(results.slice(next, next + own.length));
      next += own.length;
    }
  }

  private runAlone(pending: Pending): Promise<void> {
    return this.alone(pending.members.map((m) => m.statement)).then(pending.resolve, pending.reject);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
