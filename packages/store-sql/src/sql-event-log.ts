import type { EventLogFilter, InstanceEvent, LoggedEvent } from '@nova-lfs/core';
import type { EventLog } from '@nova-lfs/core/ports';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import type { StatementResult } from './sql-executor.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

/** The largest magnitude a JavaScript number holds exactly: "no bound" for prune's parameters. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

/** Events one append statement writes at most (one statement is prepared per row count). */
const ROWS_PER_STATEMENT = 16;

/** Statements appending events, and how to read their sequence numbers from the results. */
export interface EventAppend {
  /** Run in order, atomically with the rest of the unit (they lock the log's head until commit). */
  readonly statements: readonly BoundStatement[];
  /** The events as logged, from the results of {@link EventAppend.statements} (in order). */
  logged(results: ReadonlyArray<StatementResult<Record<string, unknown>>>): LoggedEvent[];
}

/** One event row's parameters, suffixed with the row's index in its statement. */
type RowParams = Record<string, unknown>;

/**
 * The durable {@link EventLog} on SQL (table `instance_events`), written through units of work
 * ({@link SqlEventLog.append} gives their statements).
 *
 * Sequence numbers are commit-ordered. On PostgreSQL they come from one counter row
 * (`instance_event_head`), bumped by the statement that inserts a unit's events, in the unit's
 * transaction. The row lock is held until that transaction commits, so a transaction that takes
 * higher numbers commits after every one that took lower numbers: numbers become visible in
 * order, and a reader polling with a cursor (`read(since)`) never skips a lower number that
 * commits later, as it could with a sequence (`bigserial` numbers are taken at insert time and
 * commit in any order). Group commit makes that one lock per batch of units; units of other
 * processes queue behind it. On SQLite every write holds the database's write lock until it
 * commits, so `AUTOINCREMENT` numbers are commit-ordered already (and never reused).
 *
 * Each event row keeps its instance's project (from the unit's records, an `instance.created`
 * event, the instance row, or the instance's earlier events), so reads filter by project.
 */
export class SqlEventLog implements EventLog {
  /** Append statements by row count (1 to {@link ROWS_PER_STATEMENT}), prepared when first used. */
  private readonly appendStmts = new Map<string, PreparedStatement<RowParams>>();
  private readonly readAll;
  private readonly readInstance;
  private readonly readProject;
  private readonly readBoth;
  private readonly boundsStmt;
  private readonly pruneStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    // the highest number handed out
    const head =
      database.dialect === 'postgres'
        ? sql`(select h.seq from instance_event_head h where h.id = 1)`
        : sql`coalesce((select s.seq from sqlite_sequence s where s.name = 'instance_events'), 0)`;
    const read = (by: 'all' | 'instance' | 'project' | 'both') =>
      PreparedStatement.of<{ since: number; limit: number; instanceId?: string; projectId?: string }>((p) => {
        let q = db.selectFrom('instance_events').select(['seq', 'data']).where('seq', '>', p('since'));
        if (by === 'instance' || by === 'both') q = q.where('instance_id', '=', p('instanceId') as string);
        if (by === 'project' || by === 'both') q = q.where('project_id', '=', p('projectId') as string);
        return q.orderBy('seq').limit(p('limit'));
      });
    this.readAll = read('all');
    this.readInstance = read('instance');
    this.readProject = read('project');
    this.readBoth = read('both');
    this.boundsStmt = PreparedStatement.of<Record<string, never>>(() => ({
      compile: () =>
        sql`select (select min(seq) from instance_events) as oldest, ${head} as head`.compile(db),
    }));
    // drops the oldest events up to the first one that is both among the newest `keepLast` and
    // not older than `olderThan`: the log stays one contiguous range of sequence numbers
    this.pruneStmt = PreparedStatement.of<{ keepLast: number; olderThan: number }>((p) => ({
      compile: () =>
        sql`delete from instance_events where seq < coalesce(
              (select min(k.seq) from instance_events k
                where k.seq > ${head} - ${p('keepLast')} and k.at >= ${p('olderThan')}),
              ${head} + 1)`.compile(db),
    }));
  }

  /**
   * The statements that append `events` (in order) inside a unit of work: one per
   * {@link ROWS_PER_STATEMENT} events.
   * @param projectOf the project of an instance when the caller knows it (saves the lookup)
   */
  append(
    events: readonly InstanceEvent[],
    projectOf: (instanceId: string) => string | undefined,
  ): EventAppend {
    const statements: BoundStatement[] = [];
    const sqlite = this.database.dialect === 'sqlite';
    for (let from = 0; from < events.length; from += ROWS_PER_STATEMENT) {
      const chunk = events.slice(from, from + ROWS_PER_STATEMENT);
      const params: RowParams = {};
      let allKnown = true;
      chunk.forEach((event, k) => {
        params[`i${k}`] = event.instanceId;
        const project =
          event.type === 'instance.created'
            ? event.instance.projectId
            : (projectOf(event.instanceId) ?? null);
        if (project === null) allKnown = false;
        params[`p${k}`] = project;
        params[`t${k}`] = event.type;
        params[`a${k}`] = event.at;
        params[`d${k}`] = JSON.stringify(event);
      });
      statements.push(this.appendStatement(chunk.length, sqlite && allKnown).bind(params));
    }
    return {
      statements,
      logged: (results) =>
        results.slice(0, statements.length).flatMap((r, s) => {
          const base = s * ROWS_PER_STATEMENT;
          // SQLite: one insert's AUTOINCREMENT rowids are consecutive, in the order of its rows
          if (sqlite) {
            const n = Math.min(ROWS_PER_STATEMENT, events.length - base);
            const first = r.lastInsertId! - n + 1;
            return Array.from({ length: n }, (_, k) => ({ seq: first + k, event: events[base + k]! }));
          }
          // PostgreSQL: the statement returns its rows' numbers, consecutive, in the order of its rows
          return r.rows
            .map((row) => Number(row.seq))
            .sort((x, y) => x - y)
            .map((seq, k) => ({ seq, event: events[base + k]! }));
        }),
    };
  }

  async read(since: number, limit: number, filter: EventLogFilter = {}): Promise<LoggedEvent[]> {
    if (limit <= 0) return [];
    const { instanceId, projectId } = filter;
    const params = { since, limit: Math.floor(limit) };
    const statement =
      instanceId !== undefined && projectId !== undefined
        ? this.readBoth.bind({ ...params, instanceId, projectId })
        : instanceId !== undefined
          ? this.readInstance.bind({ ...params, instanceId })
          : projectId !== undefined
            ? this.readProject.bind({ ...params, projectId })
            : this.readAll.bind(params);
    const { rows } = await this.database.exec.run<{ seq: number | string; data: string }>(statement);
    return rows.map((r) => ({ seq: Number(r.seq), event: JSON.parse(r.data) as InstanceEvent }));
  }

  async head(): Promise<number> {
    return (await this.bounds()).head;
  }

  async oldest(): Promise<number> {
    const { oldest, head } = await this.bounds();
    // nothing kept: the next event's number (0 if there never was one)
    return oldest ?? (head === 0 ? 0 : head + 1);
  }

  async prune(retention: { olderThan?: number; keepLast?: number }): Promise<number> {
    const { affected } = await this.database.exec.run(
      this.pruneStmt.bind({
        keepLast: retention.keepLast === undefined ? UNBOUNDED : Math.max(0, Math.floor(retention.keepLast)),
        olderThan: retention.olderThan ?? -UNBOUNDED,
      }),
    );
    return affected;
  }

  private async bounds(): Promise<{ oldest: number | undefined; head: number }> {
    const { rows } = await this.database.exec.run<{
      oldest: number | string | null;
      head: number | string | null;
    }>(this.boundsStmt.bind({}));
    const row = rows[0]!;
    return { oldest: row.oldest === null ? undefined : Number(row.oldest), head: Number(row.head ?? 0) };
  }

  /**
   * The statement inserting `rows` events, returning their numbers. PostgreSQL: the counter row
   * moves by `rows` in the same statement (a data-modifying CTE) and row `k` gets `base + k`.
   * SQLite: `AUTOINCREMENT` numbers the rows. The project falls back to the instance row, then to
   * the instance's latest event that has one.
   */
  private appendStatement(rows: number, projectsKnown = false): PreparedStatement<RowParams> {
    const key = `${rows}${projectsKnown ? 'k' : ''}`;
    let stmt = this.appendStmts.get(key);
    if (stmt) return stmt;
    const { db } = this.database;
    const pg = this.database.dialect === 'postgres';
    const project = (instanceId: unknown, projectId: unknown) => sql`coalesce(${projectId},
      (select i.project_id from instances i where i.id = ${instanceId}),
      (select x.project_id from instance_events x
        where x.instance_id = ${instanceId} and x.project_id is not null
        order by x.seq desc limit 1))`;
    stmt = PreparedStatement.of<RowParams>((p) => ({
      compile: () => {
        const indexes = Array.from({ length: rows }, (_, k) => k);
        if (pg) {
          const values = indexes.map(
            (k) =>
              sql`(${sql.lit(k + 1)}, ${p(`i${k}`)}::text, ${p(`p${k}`)}::text, ${p(`t${k}`)}::text, ${p(`a${k}`)}::bigint, ${p(`d${k}`)}::text)`,
          );
          return sql`with head as (
              update instance_event_head set seq = seq + ${sql.lit(rows)} where id = 1
              returning seq - ${sql.lit(rows)} as base)
            insert into instance_events (seq, instance_id, project_id, type, at, data)
            select head.base + v.k, v.i, ${project(sql`v.i`, sql`v.p`)}, v.t, v.a, v.d
            from head, (values ${sql.join(values)}) as v(k, i, p, t, a, d)
            returning seq`.compile(db);
        }
        // SQLite: no RETURNING (the rowids are read from the insert's last one), and no lookups
        // when the unit knew every row's project
        const values = indexes.map(
          (k) =>
            sql`(${p(`i${k}`)}, ${projectsKnown ? p(`p${k}`) : project(p(`i${k}`), p(`p${k}`))}, ${p(`t${k}`)}, ${p(`a${k}`)}, ${p(`d${k}`)})`,
        );
        return sql`insert into instance_events (instance_id, project_id, type, at, data)
          values ${sql.join(values)}`.compile(db);
      },
    }));
    this.appendStmts.set(key, stmt);
    return stmt;
  }
}
