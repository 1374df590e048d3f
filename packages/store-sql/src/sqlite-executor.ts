import type BetterSqlite3 from 'better-sqlite3';
import type { SqlExecutor, SqlRunner, StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** A group stops waiting for more writers once it has this many... */
const MAX_GROUP_MEMBERS = 2_000;
/** ...or is this old (milliseconds). */
const MAX_GROUP_AGE_MS = 2;

interface Group {
  readonly committed: Promise<void>;
  readonly openedAt: number;
  /** Units and writes that joined, and how many had joined at the previous check. */
  members: number;
  seen: number;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * {@link SqlExecutor} on one better-sqlite3 connection with group commit.
 *
 * A write opens a transaction (`BEGIN IMMEDIATE`, so processes sharing the file queue for the
 * write lock instead of failing on a lock upgrade) that stays open while writers keep joining it
 * from one event-loop turn to the next (at most 2 ms): every unit of work
 * that runs meanwhile (each in its own savepoint, so a failing unit undoes only itself) shares
 * one commit. A lone writer's group commits on the turn after it opened. Each caller's promise
 * resolves after that commit, which is what makes it durable: a single writer pays one commit
 * per write; N concurrent engine operations pay one commit between them. Units never interleave: they hold a lock, and
 * their statements run synchronously. Reads that ran while a group was open (and may have seen
 * its writes) also resolve only after it commits.
 *
 * With `groupCommit: false` every write and unit commits on its own before the next one starts
 * (one commit per write: the baseline group commit is measured against).
 */
export class SqliteExecutor implements SqlExecutor {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private group: Group | undefined;
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private readonly counters = { statements: 0, units: 0, commits: 0, commitMs: 0 };

  private readonly grouping: boolean;

  /**
   * @param handle the connection (this executor runs every statement on it)
   * @param options.groupCommit share commits between concurrent writers (default true)
   */
  constructor(
    private readonly handle: BetterSqlite3.Database,
    options: { readonly groupCommit?: boolean } = {},
  ) {
    this.grouping = options.groupCommit ?? true;
  }

  async run<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    if (this.busy) await this.acquire();
    else this.busy = true;
    let result: StatementResult<R>;
    let own: Group | undefined;
    try {
      const prepared = this.prepare(statement.sql);
      if (!prepared.readonly) {
        own = this.openGroup();
        own.members++;
      }
      try {
        result = this.execute<R>(prepared, statement);
      } finally {
        if (!this.grouping && own) this.commitGroup(own);
      }
    } finally {
      this.release();
    }
    const group = own ?? this.group;
    if (group) await group.committed;
    return result;
  }

  runRelaxed<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    return this.run<R>(statement);
  }

  runAll(statements: readonly BoundStatement[]): Promise<Array<StatementResult<Record<string, unknown>>>> {
    return this.unit(async (tx) => {
      const results: Array<StatementResult<Record<string, unknown>>> = [];
      for (const s of statements) results.push(await tx.run(s));
      return results;
    });
  }

  async unit<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    if (this.busy) await this.acquire();
    else this.busy = true;
    let out: T;
    let group: Group;
    try {
      group = this.openGroup();
      group.members++;
      // units never nest or overlap (they hold the lock), so one savepoint name serves all
      this.counters.units++;
      this.prepare('savepoint nlfs_unit').run();
      try {
        out = await fn({ run: async <R>(s: BoundStatement) => this.execute<R>(this.prepare(s.sql), s) });
        this.prepare('release nlfs_unit').run();
      } catch (e) {
        this.prepare('rollback to nlfs_unit').run();
        this.prepare('release nlfs_unit').run();
        if (!this.grouping) this.commitGroup(group);
        throw e;
      }
      if (!this.grouping) this.commitGroup(group);
    } finally {
      this.release();
    }
    await group.committed;
    return out;
  }

  /** Statements run, units of work, group commits and time spent committing, since opening. */
  stats(): Readonly<{ statements: number; units: number; commits: number; commitMs: number }> {
    return { ...this.counters };
  }

  /** Waits for the pending group's commit (used before closing). */
  async flush(): Promise<void> {
    if (this.group) await this.group.committed.catch(() => undefined);
  }

  private execute<R>(prepared: BetterSqlite3.Statement, s: BoundStatement): StatementResult<R> {
    this.counters.statements++;
    if (prepared.reader) {
      const rows = prepared.all(...(s.parameters as unknown[])) as R[];
      return { rows, affected: rows.length };
    }
    const info = prepared.run(...(s.parameters as unknown[]));
    return { rows: [], affected: info.changes, lastInsertId: Number(info.lastInsertRowid) };
  }

  private prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.handle.prepare(sql);
      if (this.statements.size < 1000) this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private openGroup(): Group {
    if (this.group) return this.group;
    this.prepare('begin immediate').run();
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const committed = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    committed.catch(() => undefined);
    // `seen: 1`: a group that only its opener joined commits at the first check
    this.group = { committed, resolve, reject, openedAt: performance.now(), members: 0, seen: 1 };
    if (this.grouping) setImmediate(() => this.commit());
    return this.group;
  }

  private commit(): void {
    const group = this.group;
    if (!group) return;
    const growing =
      group.members > group.seen &&
      group.members < MAX_GROUP_MEMBERS &&
      performance.now() - group.openedAt < MAX_GROUP_AGE_MS;
    if (this.busy || growing) {
      // a unit is still running, or writers are still joining: commit on a later turn
      group.seen = group.members;
      setImmediate(() => this.commit());
      return;
    }
    this.commitGroup(group);
  }

  /** Commits the open group now; its members' promises settle with the outcome. */
  private commitGroup(group: Group): void {
    this.group = undefined;
    const started = performance.now();
    try {
      this.prepare('commit').run();
      this.counters.commits++;
      this.counters.commitMs += performance.now() - started;
      group.resolve();
    } catch (e) {
      if (this.handle.inTransaction) this.handle.exec('rollback');
      group.reject(e);
    }
  }

  private acquire(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }
}
