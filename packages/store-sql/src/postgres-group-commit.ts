import pg from 'pg';
import type { StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** `pg`'s own conversion of query parameters (exported at run time, not in its type definitions). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue;

/** One statement waiting for a batch. */
interface Pending {
  readonly statement: BoundStatement;
  readonly name: string;
  resolve(result: StatementResult<unknown>): void;
  reject(e: unknown): void;
}

/** How a {@link PostgresGroupCommit} batches. */
export interface GroupCommitOptions {
  /** Batches on the wire at once (each on its own connection). Default 1. */
  readonly maxInFlight?: number;
  /** Statements per batch at most. Default 256. */
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
 * next batch sends all of them as one transaction in one round trip
 * (`begin; execute s1(...); execute s2(...); ...; commit`). Each statement is prepared once per
 * connection (`PREPARE`, in a round trip of its own the first time) and executed with its
 * parameters written as quoted literals (`pg.escapeLiteral`, so no value is ever read as SQL).
 *
 * Every caller's promise settles after its batch committed, so nothing it acts on can be lost.
 * Statements of one batch commit together: if one fails on the server (a duplicate key, a
 * deadlock), PostgreSQL aborts the whole transaction, nothing of it is kept, and every statement
 * of the batch is run again on its own (`single`), so each caller gets its own statement's
 * result or error. A connection that breaks mid-batch rejects the batch's callers with that
 * error (whether the commit happened is then unknown, as for any statement).
 *
 * A lone statement (nothing else waiting) goes through `single` as it would without batching.
 */
export class PostgresGroupCommit {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly counters = { batches: 0, batched: 0, fallbacks: 0 };
  private readonly maxInFlight: number;
  private readonly maxBatch: number;

  /**
   * @param pool connections the batches run on
   * @param single runs one statement on its own (the path without batching)
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly single: (statement: BoundStatement) => Promise<StatementResult<unknown>>,
    options: GroupCommitOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
    this.maxBatch = options.maxBatch ?? 256;
  }

  /**
   * Runs `statement` in the next batch.
   * @param name the statement's prepared-statement name on this pool's connections (one per SQL text)
   */
  submit<R>(statement: BoundStatement, name: string): Promise<StatementResult<R>> {
    return new Promise<StatementResult<R>>((resolve, reject) => {
      this.queue.push({ statement, name, resolve: resolve as Pending['resolve'], reject });
      this.schedule();
    });
  }

  stats(): GroupCommitStats {
    return { ...this.counters };
  }

  /** Dispatches on the next turn, so everything submitted in this one can share a batch. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
      });
    }
  }

  private async send(submitted: Pending[]): Promise<void> {
    // a statement whose parameters cannot be written as literals fails alone, as it would in `pg`
    const batch: Array<{ pending: Pending; text: string }> = [];
    for (const pending of submitted) {
      try {
        batch.push({ pending, text: executeText(pending) });
      } catch (e) {
        pending.reject(e);
      }
    }
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const { pending } = batch[0]!;
      await this.single(pending.statement).then(pending.resolve, pending.reject);
      return;
    }
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      for (const { pending } of batch) pending.reject(e);
      return;
    }
    let failed: unknown;
    try {
      await prepare(client, batch);
      this.counters.batches++;
      this.counters.batched += batch.length;
      const results = (await client.query(
        `begin;${batch.map((b) => b.text).join(';')};commit`,
      )) as unknown as pg.QueryResult[];
      batch.forEach(({ pending }, i) => {
        const r = results[i + 1]!;
        pending.resolve({ rows: r.rows, affected: r.rowCount ?? 0 });
      });
    } catch (e) {
      failed = e;
    }
    if (failed === undefined) {
      client.release();
      return;
    }
    if (!isServerError(failed)) {
      // the connection broke: whether the commit happened is unknown, as for any statement
      client.release(asError(failed));
      for (const { pending } of batch) pending.reject(failed);
      return;
    }
    // the server refused: nothing of the batch is kept. Give the connection back first (a small
    // pool would otherwise have none left for the retries), then run each statement on its own.
    this.counters.fallbacks++;
    const rolledBack = await client.query('rollback').then(
      () => undefined,
      (e: unknown) => asError(e),
    );
    client.release(rolledBack);
    await Promise.all(
      batch.map(({ pending }) => this.single(pending.statement).then(pending.resolve, pending.reject)),
    );
  }
}

/** Per connection (named prepared statements live in the server's session): the names prepared. */
const preparedOn = new WeakMap<pg.PoolClient, Set<string>>();

/**
 * Prepares, one statement per round trip, what the batch needs and this connection lacks (once
 * per connection and statement; a failed `PREPARE` leaves the others it sent in place, so each
 * goes alone and is remembered once it succeeded).
 */
async function prepare(client: pg.PoolClient, batch: ReadonlyArray<{ pending: Pending }>): Promise<void> {
  let known = preparedOn.get(client);
  if (!known) {
    known = new Set();
    preparedOn.set(client, known);
  }
  for (const { pending } of batch) {
    if (known.has(pending.name)) continue;
    await client.query(`prepare ${pending.name} as ${pending.statement.sql}`);
    known.add(pending.name);
  }
}

/** `execute name('v1', 'v2', NULL, ...)`: every value a quoted literal, typed by the statement. */
function executeText(p: Pending): string {
  if (p.statement.parameters.length === 0) return `execute ${p.name}`;
  return `execute ${p.name}(${p.statement.parameters.map(literal).join(',')})`;
}

/** A parameter as a SQL literal, converted the way `pg` converts query parameters. */
export function literal(value: unknown): string {
  const v = prepareValue(value);
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return `'\\x${v.toString('hex')}'`;
  return pg.escapeLiteral(String(v));
}

/** An error the server reported (it carries a SQLSTATE); anything else is the connection's. */
function isServerError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'severity' in e && 'code' in e;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
