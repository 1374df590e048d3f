import pg from 'pg';
import { InvalidParameterError } from './errors.js';
import type { StatementResult } from './sql-executor.js';

/** `pg`'s own conversion of query parameters (exported at run time, not in its type definitions). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue;

/** A parameter as it travels in a Bind message: text, bytes (binary format) or SQL NULL. */
export type WireValue = string | Buffer | null;

/** A statement of a pipeline: its prepared-statement name (one per SQL text), text and parameters. */
export interface PipelinedStatement {
  /** Names one SQL text on every connection it is used on (prepared once per connection). */
  readonly name: string;
  readonly sql: string;
  /** From {@link toWireValues}. */
  readonly values: readonly WireValue[];
}

/**
 * Converts statement parameters the way `pg` converts query parameters (numbers, booleans and
 * dates to text, objects to JSON, typed arrays to bytes), refusing what cannot be sent.
 * @throws InvalidParameterError for a string holding a NUL byte (PostgreSQL text cannot hold
 *   one) or a value `pg` cannot convert (the conversion's error is its `cause`)
 */
export function toWireValues(parameters: readonly unknown[]): WireValue[] {
  const out: WireValue[] = new Array(parameters.length);
  for (let i = 0; i < parameters.length; i++) {
    let v: unknown;
    try {
      v = prepareValue(parameters[i]);
    } catch (e) {
      throw new InvalidParameterError(i + 1, e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (v === null || v === undefined) out[i] = null;
    else if (Buffer.isBuffer(v)) out[i] = v;
    else {
      const s = typeof v === 'string' ? v : String(v);
      if (s.includes('\u0000')) throw new InvalidParameterError(i + 1, 'text contains a NUL byte (U+0000)');
      out[i] = s;
    }
  }
  return out;
}

/** The protocol messages of `pg`'s connection that a pipeline writes. */
interface Wire {
  readonly stream: { cork?(): void; uncork?(): void };
  parse(query: { name: string; text: string; types: never[] }): void;
  bind(config: { statement: string; values: readonly WireValue[] }): void;
  describe(msg: { type: 'P'; name: '' }): void;
  execute(config: { portal: ''; rows: 0 }): void;
  close(msg: { type: 'S'; name: string }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

/** What one server session has prepared, by name (statements live per session). */
interface Session {
  /** Names whose Parse the server completed. */
  readonly prepared: Set<string>;
  /** Names whose Parse went out in a pipeline that failed at that very statement: maybe prepared. */
  readonly uncertain: Set<string>;
  /**
   * The rows each statement returns, learnt from its first Describe (null: it returns none). A
   * prepared statement's result columns never change, so later runs skip the Describe.
   */
  readonly shapes: Map<string, Shape | null>;
}

/** The columns of a statement's rows and how to read each. */
interface Shape {
  readonly fields: readonly FieldDescription[];
  readonly parsers: ReadonlyArray<(raw: string) => unknown>;
}

/** Per `pg` connection object (one per server session). */
const sessions = new WeakMap<object, Session>();

function sessionOf(connection: object): Session {
  let s = sessions.get(connection);
  if (!s) {
    s = { prepared: new Set(), uncertain: new Set(), shapes: new Map() };
    sessions.set(connection, s);
  }
  return s;
}

interface FieldDescription {
  readonly name: string;
  readonly dataTypeID: number;
  readonly format: 'text' | 'binary';
}

/** Rows changed (or returned) according to a CommandComplete tag such as `INSERT 0 1` or `UPDATE 3`. */
function affectedOf(tag: string): number {
  const last = tag.lastIndexOf(' ');
  const n = last > 0 ? Number(tag.slice(last + 1)) : Number.NaN;
  return Number.isInteger(n) ? n : 0;
}

/**
 * Statements written to one connection as a single pipeline of the extended query protocol
 * (Parse where the session lacks the statement, then Bind, Describe, Execute per statement, one
 * Sync at the end) and answered in one round trip. A `pg` custom query (`Submittable`, the
 * interface `pg-cursor` uses): `pg` routes the server's replies to it.
 *
 * Outside an explicit transaction the statements up to the Sync form one implicit transaction:
 * they commit together at the Sync, or an error stops the pipeline there and nothing of it is
 * kept. Values only ever travel in Bind messages; SQL text is only ever the statements' own.
 */
class Pipeline {
  private index = 0;
  private rows: Record<string, unknown>[] = [];
  private shape: Shape | undefined;
  /** The current statement's RowDescription arrived (it was described in this pipeline). */
  private described = false;
  private readonly results: Array<StatementResult<Record<string, unknown>>> = [];
  /** Per statement: the name it sent a Parse for (the first statement using a name the session lacks). */
  private readonly parsedWith: Array<string | undefined> = [];
  /** Per statement: its rows' shape when known (no Describe sent), null when it returns none. */
  private readonly known: Array<Shape | null | undefined> = [];
  private session: Session | undefined;
  private settled = false;

  constructor(
    private readonly statements: readonly PipelinedStatement[],
    private readonly done: (
      error: unknown,
      results?: Array<StatementResult<Record<string, unknown>>>,
    ) => void,
  ) {}

  submit(connection: pg.Connection): void {
    const wire = connection as unknown as Wire;
    const session = sessionOf(connection);
    this.session = session;
    const parsing = new Set<string>();
    wire.stream.cork?.();
    try {
      for (const s of this.statements) {
        if (!session.prepared.has(s.name) && !parsing.has(s.name)) {
          // closing a statement that does not exist is no error: a maybe-prepared name starts afresh
          if (session.uncertain.has(s.name)) wire.close({ type: 'S', name: s.name });
          wire.parse({ name: s.name, text: s.sql, types: [] });
          parsing.add(s.name);
          this.parsedWith.push(s.name);
        } else {
          this.parsedWith.push(undefined);
        }
        wire.bind({ statement: s.name, values: s.values });
        const shape = session.shapes.get(s.name);
        this.known.push(shape);
        if (shape === undefined) wire.describe({ type: 'P', name: '' });
        wire.execute({ portal: '', rows: 0 });
      }
      wire.sync();
    } finally {
      wire.stream.uncork?.();
    }
    this.enter();
  }

  handleRowDescription(msg: { fields: FieldDescription[] }): void {
    this.described = true;
    this.shape = {
      fields: msg.fields,
      parsers: msg.fields.map(
        (f) => pg.types.getTypeParser(f.dataTypeID, f.format) as (raw: string) => unknown,
      ),
    };
  }

  handleDataRow(msg: { fields: Array<string | null> }): void {
    const { fields, parsers } = this.shape!;
    const row: Record<string, unknown> = {};
    for (let i = 0; i < msg.fields.length; i++) {
      const raw = msg.fields[i];
      row[fields[i]!.name] = raw === null || raw === undefined ? null : parsers[i]!(raw);
    }
    this.rows.push(row);
  }

  handleCommandComplete(msg: { text: string }): void {
    this.results.push({ rows: this.rows, affected: affectedOf(msg.text) });
    this.next();
  }

  handleEmptyQuery(): void {
    this.results.push({ rows: [], affected: 0 });
    this.next();
  }

  handlePortalSuspended(): void {
    // never asked for (every Execute fetches all rows)
  }

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as Wire).sendCopyFail('COPY is not supported in a pipeline');
  }

  handleCopyData(): void {}

  handleError(error: unknown): void {
    // statements before `index` completed (their Parse too); the Parse sent with this statement
    // may or may not have run; the server skipped every later message up to the Sync
    const name = this.parsedWith[this.index];
    if (name !== undefined) this.session?.uncertain.add(name);
    this.settle(error);
  }

  handleReadyForQuery(): void {
    if (this.index !== this.statements.length) {
      this.settle(new Error(`pipeline ended after ${this.index} of ${this.statements.length} statements`));
      return;
    }
    this.settle(undefined, this.results);
  }

  private next(): void {
    const name = this.statements[this.index]!.name;
    const parsed = this.parsedWith[this.index];
    if (parsed !== undefined && this.session) {
      this.session.prepared.add(parsed);
      this.session.uncertain.delete(parsed);
    }
    if (this.known[this.index] === undefined)
      this.session?.shapes.set(name, this.described ? this.shape! : null);
    this.index++;
    this.rows = [];
    this.enter();
  }

  /** Takes up the current statement's known shape (or none until its RowDescription arrives). */
  private enter(): void {
    this.shape = this.known[this.index] ?? undefined;
    this.described = false;
  }

  private settle(error: unknown, results?: Array<StatementResult<Record<string, unknown>>>): void {
    if (this.settled) return;
    this.settled = true;
    this.done(error, results);
  }
}

/**
 * Runs `statements` on `client` in one round trip, as one implicit transaction when the client
 * is not inside `BEGIN` (all commit at the end, or none does), one result per statement. Each
 * statement is prepared once per connection (protocol-level, by name) and bound with its values.
 * @throws the driver's error: `pg.DatabaseError` when the server refused (nothing was kept),
 *   another error when the connection broke (whether the commit happened is then unknown)
 */
export function runPipelined(
  client: pg.ClientBase,
  statements: readonly PipelinedStatement[],
): Promise<Array<StatementResult<Record<string, unknown>>>> {
  return new Promise((resolve, reject) => {
    const pipeline = new Pipeline(statements, (error, results) => {
      if (error === undefined) resolve(results!);
      else reject(error);
    });
    client.query(pipeline as unknown as pg.Submittable);
  });
}
