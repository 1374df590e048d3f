import type BetterSqlite3 from 'better-sqlite3';
import type { SqlExecutor, SqlRunner, StatementResult } from './sql-executor.js';
import type { BoundStatement } from './statement.js';

/** A group stops waiting for more writers once it has this many... */
const MAX_GROUP_MEMBERS = 2_000;
/** ...or is this old (milliseconds). */
const MAX_GROUP_AGE_MS = 2;

/** How a unit or write of a group ended (the last time it ran). */
type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** A unit or write that ran in the open group: kept so that the group can run it again. */
type Member =
  | { readonly kind: 'unit'; readonly fn: (tx: SqlRunner) => Promise<unknown>; outcome: Outcome }
  | { readonly kind: 'write'; readonly statement: BoundStatement; outcome: Outcome };

interface Group {
  readonly committed: Promise<void>;
  readonly openedAt: number;
  /** Units and writes that joined, and how many had joined at the previous check. */
  members: number;
  seen: number;
  /** Units and writes that ran in the group so far, in order (the group's replay log). */
  readonly log: Member[];
  /** The group was run again after a failure: its units run in savepoints from then on. */
  guarded: boolean;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * {@link SqlExecutor} on one better-sqlite3 connection with optimistic group commit.
 *
 * A write opens a transaction (`BEGIN IMMEDIATE`, so processes sharing the file queue for the
 * write lock instead of failing on a lock upgrade) that stays open
 * while writers keep joining it from one event-loop turn to the next (at most 2 ms): every unit
 * of work and write that runs meanwhile shares one commit. A lone writer's group commits on the
 * turn after it opened. Each caller's promise settles after that commit, which is what makes it
 * durable: a single writer pays one commit per write; N concurrent engine operations pay one
 * commit between them. Units never interleave: they hold a lock, and their statements run
 * synchronously. Reads that ran while a group was open (and may have seen its writes) also
 * resolve only after it commits.
 *
 * Optimistic: units run without a savepoint of their own (a savepoint copies every page a unit
 * first changes into its journal, most of a unit's cost in SQLite). When a unit fails, the
 * group's writes are undone at once (its own with them) and the group runs again before any
 * other caller's statement runs: each unit and write that had succeeded, in order, each unit now
 * in its own savepoint, as are units that join the group afterwards. So a failing unit still
 * undoes only itself, and every caller gets the outcome of the last run of its unit (the failed
 * unit keeps its error). A transaction SQLite itself rolled back (a full disk, an I/O error, a
 * statement's `OR ROLLBACK`) runs again the same way. Units must therefore be
 * replayable: a unit's function may run more than once before its group commits, and must not
 * act outside the database before its promise settles (writing what it read and computed to a
 * cache that follows the unit's writes is fine: the last run writes it again). A write (`run`)
 * that fails undoes only itself (SQLite's statement rollback) and needs no replay.
 *
 * No other connection writes in between, so after a failed unit a group runs again on what it first ran on: a
 * connection that owns its file keeps the write lock across a rollback (exclusive locking
 * mode); on a file shared with other connections (`shared: true`) each group holds a savepoint
 * from its start (`SAVEPOINT nlfs_group`) and rolls back to it, keeping its transaction open.
 *
 * With `groupCommit: false` every write and unit commits on its own before the next one starts
 * (one commit per write: the baseline group commit is measured against); a failing unit rolls its
 * transaction back.
 */
export class SqliteExecutor implements SqlExecutor {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private group: Group | undefined;
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private readonly counters = { statements: 0, units: 0, commits: 0, commitMs: 0, savepoints: 0, replays: 0 };
  /** What a unit's function runs its statements through (the lock is held meanwhile). */
  private readonly runner: SqlRunner = {
    run: async <R>(s: BoundStatement) => this.execute<R>(this.prepare(s.sql), s),
  };

  private readonly grouping: boolean;
  private readonly shared: boolean;

  /**
   * @param handle the connection (this executor runs every statement on it)
   * @param options.groupCommit share commits between concurrent writers (default true)
   * @param options.shared other connections may write the file (default false: the connection
   *   holds it in exclusive locking mode, which keeps the write lock across a rollback)
   */
  constructor(
    private readonly handle: BetterSqlite3.Database,
    options: { readonly groupCommit?: boolean; readonly shared?: boolean } = {},
  ) {
    this.grouping = options.groupCommit ?? true;
    this.shared = options.shared ?? false;
  }

  async run<R>(statement: BoundStatement): Promise<StatementResult<R>> {
    if (this.busy) await this.acquire();
    else this.busy = true;
    let result: StatementResult<R>;
    let own: Group | undefined;
    let member: Member | undefined;
    try {
      const prepared = this.prepare(statement.sql);
      if (!prepared.readonly) {
        own = this.openGroup();
        own.members++;
      }
      try {
        result = this.execute<R>(prepared, statement);
      } catch (e) {
        // a statement that failed undid only itself, unless SQLite rolled the whole transaction
        // back (a full disk, an I/O error): then the group runs again without it
        if (own && this.grouping && !this.handle.inTransaction) await this.replay(own);
        throw e;
      } finally {
        if (!this.grouping && own) this.commitGroup(own);
      }
      if (own && this.grouping) {
        member = { kind: 'write', statement, outcome: { ok: true, value: result } };
        own.log.push(member);
      }
    } finally {
      this.release();
    }
    const group = own ?? this.group;
    if (group) await group.committed;
    if (member) return settle(member.outcome) as StatementResult<R>;
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
    let group: Group;
    let member: Member;
    try {
      group = this.openGroup();
      group.members++;
      this.counters.units++;
      member = { kind: 'unit', fn, outcome: { ok: true, value: undefined } };
      if (!this.grouping) {
        // the unit is its transaction's only member: it commits, or rolls back
        member.outcome = await this.attempt(fn);
        if (member.outcome.ok) this.commitGroup(group);
        else this.abandonGroup(group);
      } else {
        const guarded = group.guarded;
        member.outcome = guarded ? await this.guarded(fn) : await this.attempt(fn);
        // a unit that succeeded runs again if its group does
        if (member.outcome.ok) group.log.push(member);
        // undo a failed unit that had no savepoint of its own, or run again what SQLite rolled
        // back itself (a full disk, an I/O error, an `OR ROLLBACK` statement)
        if (!this.handle.inTransaction || (!member.outcome.ok && !guarded)) await this.replay(group);
      }
    } finally {
      this.release();
    }
    await group.committed;
    return settle(member.outcome) as T;
  }

  /**
   * Statements run (savepoints and transaction control not counted), units of work, group
   * commits, time spent committing, savepoints opened (units that ran in one, and groups on a
   * shared file) and groups run again after a failure, since opening.
   */
  stats(): Readonly<{
    statements: number;
    units: number;
    commits: number;
    commitMs: number;
    savepoints: number;
    replays: number;
  }> {
    return { ...this.counters };
  }

  /** Waits for the pending group's commit (used before closing). */
  async flush(): Promise<void> {
    if (this.group) await this.group.committed.catch(() => undefined);
  }

  /** Runs a unit's function with no savepoint of its own. */
  private async attempt(fn: (tx: SqlRunner) => Promise<unknown>): Promise<Outcome> {
    try {
      return { ok: true, value: await fn(this.runner) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** Runs a unit's function in its own savepoint: if it fails, only its writes are undone. */
  private async guarded(fn: (tx: SqlRunner) => Promise<unknown>): Promise<Outcome> {
    // units never nest or overlap (they hold the lock), so one savepoint name serves all
    this.prepare('savepoint nlfs_unit').run();
    this.counters.savepoints++;
    const outcome = await this.attempt(fn);
    // (a transaction SQLite rolled back took the savepoint with it)
    if (!outcome.ok && this.handle.inTransaction) this.prepare('rollback to nlfs_unit').run();
    if (this.handle.inTransaction) this.prepare('release nlfs_unit').run();
    return outcome;
  }

  /**
   * Undoes the group's writes and runs its log again (every member that had succeeded, in order),
   * each unit in its own savepoint. The member whose failure made the group run again is not in
   * the log: it keeps its failure, which it met on what the log wrote. Each member of the log
   * keeps the outcome of its new run; from now on the group's units run in savepoints. If the
   * transaction is lost meanwhile, the group fails: every member's promise rejects.
   */
  private async replay(group: Group): Promise<void> {
    this.counters.replays++;
    group.guarded = true;
    try {
      if (this.handle.inTransaction) {
        if (this.shared) this.prepare('rollback to nlfs_group').run();
        else {
          this.prepare('rollback').run();
          this.begin();
        }
      } else this.begin();
      for (const m of group.log) await this.rerun(m);
    } catch (e) {
      // the transaction was lost while running again (SQLite rolled it back)
      this.abandonGroup(group, e);
    }
  }

  /** Runs a member of a group again (in a savepoint if it is a unit). */
  private async rerun(m: Member): Promise<void> {
    if (m.kind === 'unit') m.outcome = await this.guarded(m.fn);
    else {
      try {
        m.outcome = { ok: true, value: this.execute(this.prepare(m.statement.sql), m.statement) };
      } catch (error) {
        m.outcome = { ok: false, error };
      }
    }
    if (!this.handle.inTransaction) throw outcomeError(m.outcome);
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

  /** Opens the transaction of a group, with the savepoint its replay rolls back to. */
  private begin(): void {
    this.prepare('begin immediate').run();
    if (this.grouping && this.shared) {
      this.prepare('savepoint nlfs_group').run();
      this.counters.savepoints++;
    }
  }

  private openGroup(): Group {
    if (this.group) return this.group;
    this.begin();
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const committed = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    committed.catch(() => undefined);
    this.group = {
      committed,
      resolve,
      reject,
      openedAt: performance.now(),
      members: 0,
      // a group that only its opener joined commits at the first check
      seen: 1,
      log: [],
      guarded: false,
    };
    const group = this.group;
    if (this.grouping) setImmediate(() => this.commit(group));
    return group;
  }

  private commit(group: Group): void {
    // committed already, or abandoned
    if (this.group !== group) return;
    const growing =
      group.members > group.seen &&
      group.members < MAX_GROUP_MEMBERS &&
      performance.now() - group.openedAt < MAX_GROUP_AGE_MS;
    if (this.busy || growing) {
      // a unit is still running, or writers are still joining: commit on a later turn
      group.seen = group.members;
      setImmediate(() => this.commit(group));
      return;
    }
    this.commitGroup(group);
  }

  /** Commits the open group now; its members' promises settle with the outcome. */
  private commitGroup(group: Group): void {
    if (this.group !== group) return;
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

  /**
   * Rolls the open group's transaction back: it has nothing to commit (its members' promises
   * settle as they ran), or it cannot commit (they reject with `error`).
   */
  private abandonGroup(group: Group, error?: unknown): void {
    if (this.group === group) this.group = undefined;
    if (this.handle.inTransaction) this.handle.exec('rollback');
    if (error === undefined) group.resolve();
    else group.reject(error);
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

/** A member's result, or its error thrown. */
function settle(outcome: Outcome): unknown {
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}

/** The error of a failed outcome (what a lost transaction reports). */
function outcomeError(outcome: Outcome): unknown {
  return outcome.ok ? new Error('SQLite rolled the transaction back') : outcome.error;
}
