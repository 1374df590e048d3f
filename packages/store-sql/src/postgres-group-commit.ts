import pg from 'pg';
import type { StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** `pg`'s own conversion of query parameters (exported at run time, not in its type definitions). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue;

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
 * next batch sends all of them as one transaction in one round trip
 * (`begin; execute s1(...); execute s2(...); ...; commit`). Each statement is prepared once per
 * connection (`PREPARE`, in a round trip of its own the first time) and executed with its
 * parameters written as quoted literals (quoted as `pg.escapeLiteral` does, so no value is ever
 * read as SQL).
 *
 * Every caller's promise settles after its batch committed, so nothing it acts on can be lost.
 * Statements of one batch commit together: if one fails on the server (a duplicate key, a
 * deadlock), PostgreSQL aborts the whole transaction, nothing of it is kept, and every
 * submission of the batch is run again on its own (`alone`), so each caller gets its own result
 * or error. {@link PostgresGroupCommit.submitAll} submits statements that must commit together:
 * they go into a batch next to each other (after a refused batch: in a transaction of their
 * own). A connection that breaks mid-batch rejects the batch's callers with that error (whether
 * the commit happened is then unknown, as for any statement).
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
    // a submission whose parameters cannot be written as literals fails alone, as it would in `pg`
    const batch: Array<{ pending: Pending; texts: string[] }> = [];
    for (const pending of submitted) {
      try {
        batch.push({ pending, texts: pending.members.map(executeText) });
      } catch (e) {
        pending.reject(e);
      }
    }
    if (batch.length === 0) return;
    if (batch.length === 1 && batch[0]!.pending.members.length === 1) {
      // a lone statement: autocommit, no transaction around it
      await this.runAlone(batch[0]!.pending);
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
      const texts = batch.flatMap((b) => b.texts);
      this.counters.batches++;
      this.counters.batched += texts.length;
      const results = (await client.query(`begin;${texts.join(';')};commit`)) as unknown as pg.QueryResult[];
      let next = 1; // after `begin`
      for (const { pending } of batch) {
        pending.resolve(
          pending.members.map(() => {
            const r = results[next++]!;
            return { rows: r.rows, affected: r.rowCount ?? 0 };
          }),
        );
      }
    } catch (e) {
      failed = e;
    }
    if (failed === undefined) {
      client.release();
      return;
    }
    if (!(failed instanceof pg.DatabaseError)) {
      // the connection broke: whether the commit happened is unknown, as for any statement
      client.release(asError(failed));
      for (const { pending } of batch) pending.reject(failed);
      return;
    }
    // the server refused: nothing of the batch is kept. Give the connection back first (a small
    // pool would otherwise have none left for the retries), then run each submission on its own.
    this.counters.fallbacks++;
    const rolledBack = await client.query('rollback').then(
      () => undefined,
      (e: unknown) => asError(e),
    );
    client.release(rolledBack);
    await Promise.all(batch.map(({ pending }) => this.runAlone(pending)));
  }

  private runAlone(pending: Pending): Promise<void> {
    return this.alone(pending.members.map((m) => m.statement)).then(pending.resolve, pending.reject);
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
    for (const m of pending.members) {
      if (known.has(m.name)) continue;
      await client.query(`prepare ${m.name} as ${m.statement.sql}`);
      known.add(m.name);
    }
  }
}

/** `execute name('v1', 'v2', NULL, ...)`: every value a quoted literal, typed by the statement. */
function executeText(m: Member): string {
  if (m.statement.parameters.length === 0) return `execute ${m.name}`;
  return `execute ${m.name}(${m.statement.parameters.map(literal).join(',')})`;
}

/** A parameter as a SQL literal, converted the way `pg` converts query parameters. */
export function literal(value: unknown): string {
  const v = prepareValue(value);
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return `'\\x${v.toString('hex')}'`;
  return quote(String(v));
}

const QUOTES = /'/g;
const BACKSLASHES = /\\/g;

/**
 * `pg.escapeLiteral`'s output (quotes doubled; with backslashes, doubled and an `E` prefix), built
 * with two native replaces instead of one string concatenation per character: the stores'
 * parameters are JSON documents of about a kilobyte.
 */
function quote(s: string): string {
  const body = s.includes("'") ? s.replace(QUOTES, "''") : s;
  return s.includes('\\') ? ` E'${body.replace(BACKSLASHES, '\\\\')}'` : `'${body}'`;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
