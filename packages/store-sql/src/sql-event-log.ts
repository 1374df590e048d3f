import type { EventLogFilter, InstanceEvent, LoggedEvent } from '@nova-lfs/core';
import type { EventLog } from '@nova-lfs/core/ports';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import type { StatementResult } from './sql-executor.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

/** The largest magnitude a JavaScript number holds exactly: "no bound" for prune's parameters. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

/** Rows one append statement writes at most (one statement is prepared per row count). */
const ROWS_PER_STATEMENT = 16;

/** A stored row: the number of its last event, how many it holds, and their JSON. */
interface EventRow {
  readonly seq: number | string;
  readonly event_count: number | string | null;
  readonly data: string;
}

/**
 * The events of a stored row, numbered: a row holding one event (every row written before
 * migration `0006_event_rows`) keeps it as a JSON object, a row holding more keeps a JSON array
 * whose last element has the row's `seq`.
 */
export function eventsOfRow(row: EventRow): LoggedEvent[] {
  const last = Number(row.seq);
  const count = Number(row.event_count ?? 1);
  if (count === 1) return [{ seq: last, event: JSON.parse(row.data) as InstanceEvent }];
  const events = JSON.parse(row.data) as InstanceEvent[];
  return events.map((event, k) => ({ seq: last - count + 1 + k, event }));
}

/** A run of consecutive events of one instance in a unit: one row. */
interface Run {
  readonly instanceId: string;
  readonly events: InstanceEvent[];
}

/** Splits events (in order) into runs of consecutive events of one instance. */
function runsOf(events: readonly InstanceEvent[]): Run[] {
  const runs: Run[] = [];
  let current: Run | undefined;
  for (const event of events) {
    if (current?.instanceId !== event.instanceId) {
      current = { instanceId: event.instanceId, events: [] };
      runs.push(current);
    }
    current.events.push(event);
  }
  return runs;
}

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
 * commits, and a row's number is the highest ever handed out (`AUTOINCREMENT`'s
 * `sqlite_sequence`, which explicit numbers move too) plus its events: commit-ordered, never
 * reused.
 *
 * One row holds a run of consecutive events of one instance in a unit (most units report on one
 * instance: one row per unit), so a unit writes few rows and index entries. A row's `seq` is the
 * number of its last event and `event_count` how many it holds: its events are numbered
 * `seq - event_count + 1` to `seq`, each one apart, so every event keeps its own strictly
 * increasing number, and a cursor may point inside a row (a read skips that row's events up to
 * it). Rows of one event keep it as a JSON object (as every row did before migration
 * `0006_event_rows`), rows of more a JSON array. Retention drops whole rows.
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
        let q = db
          .selectFrom('instance_events')
          .select(['seq', 'event_count', 'data'])
          .where('seq', '>', p('since'));
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
        sql`select (select o.seq - o.event_count + 1 from instance_events o order by o.seq limit 1) as oldest,
              ${head} as head`.compile(db),
    }));
    // drops the oldest rows up to the first one holding an event that is both among the newest
    // `keepLast` and not older than `olderThan` (a row's `at` is its newest event's): the log
    // stays one contiguous range of sequence numbers
    this.pruneStmt = PreparedStatement.of<{ keepLast: number; olderThan: number }>((p) => ({
      compile: () =>
        sql`delete from instance_events where seq < coalesce(
              (select min(k.seq) from instance_events k
                where k.seq > ${head} - ${p('keepLast')} and k.at >= ${p('olderThan')}),
              ${head} + 1)
            returning event_count`.compile(db),
    }));
  }

  /**
   * The statements that append `events` (in order) inside a unit of work: one row per run of
   * consecutive events of one instance, one statement per {@link ROWS_PER_STATEMENT} rows.
   * @param projectOf the project of an instance when the caller knows it (saves the lookup)
   */
  append(
    events: readonly InstanceEvent[],
    projectOf: (instanceId: string) => string | undefined,
  ): EventAppend {
    const statements: BoundStatement[] = [];
    /** Events per statement, in order. */
    const totals: number[] = [];
    const sqlite = this.database.dialect === 'sqlite';
    const runs = runsOf(events);
    for (let from = 0; from < runs.length; from += ROWS_PER_STATEMENT) {
      const chunk = runs.slice(from, from + ROWS_PER_STATEMENT);
      const params: RowParams = {};
      let allKnown = true;
      let end = 0;
      chunk.forEach((run, k) => {
        const first = run.events[0]!;
        const created = run.events.find((e) => e.type === 'instance.created');
        const project =
          created?.type === 'instance.created'
            ? created.instance.projectId
            : (projectOf(run.instanceId) ?? null);
        if (project === null) allKnown = false;
        end += run.events.length;
        let at = first.at;
        for (const e of run.events) if (e.at > at) at = e.at;
        params[`e${k}`] = end;
        params[`n${k}`] = run.events.length;
        params[`i${k}`] = run.instanceId;
        params[`p${k}`] = project;
        params[`t${k}`] = first.type;
        params[`a${k}`] = at;
        params[`d${k}`] = JSON.stringify(run.events.length === 1 ? first : run.events);
      });
      params.total = end;
      totals.push(end);
      statements.push(this.appendStatement(chunk.length, sqlite && allKnown).bind(params));
    }
    return {
      statements,
      logged: (results) => {
        const out: LoggedEvent[] = [];
        let next = 0;
        results.slice(0, statements.length).forEach((r, s) => {
          const total = totals[s]!;
          // the statement's last number: SQLite's last inserted rowid, PostgreSQL's highest returned
          const last = sqlite ? r.lastInsertId! : Math.max(...r.rows.map((row) => Number(row.seq)));
          for (let k = 0; k < total; k++) out.push({ seq: last - total + 1 + k, event: events[next++]! });
        });
        return out;
      },
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
    const { rows } = await this.database.exec.run<EventRow>(statement);
    // each row holds at least one event after `since`: `limit` rows hold enough
    const out: LoggedEvent[] = [];
    for (const row of rows) {
      for (const e of eventsOfRow(row)) if (e.seq > since && out.length < limit) out.push(e);
    }
    return out;
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
    const { rows } = await this.database.exec.run<{ event_count: number | string | null }>(
      this.pruneStmt.bind({
        keepLast: retention.keepLast === undefined ? UNBOUNDED : Math.max(0, Math.floor(retention.keepLast)),
        olderThan: retention.olderThan ?? -UNBOUNDED,
      }),
    );
    let dropped = 0;
    for (const r of rows) dropped += Number(r.event_count ?? 1);
    return dropped;
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
   * The statement inserting `rows` event rows. Row `k` holds `n{k}` events and ends at `e{k}`
   * events into the statement (`total` in all). PostgreSQL: the counter row moves by `total` in
   * the same statement (a data-modifying CTE), row `k` gets `base + e{k}`, and the rows' numbers
   * are returned. SQLite: row `k` gets the highest number handed out so far plus `e{k}` (read
   * once per statement: `sqlite_sequence` moves at its end). The project falls back to the
   * instance row, then to the instance's latest event that has one.
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
              sql`(${p(`e${k}`)}::bigint, ${p(`n${k}`)}::integer, ${p(`i${k}`)}::text, ${p(`p${k}`)}::text, ${p(`t${k}`)}::text, ${p(`a${k}`)}::bigint, ${p(`d${k}`)}::text)`,
          );
          return sql`with head as (
              update instance_event_head set seq = seq + ${p('total')}::bigint where id = 1
              returning seq - ${p('total')}::bigint as base)
            insert into instance_events (seq, event_count, instance_id, project_id, type, at, data)
            select head.base + v.e, v.n, v.i, ${project(sql`v.i`, sql`v.p`)}, v.t, v.a, v.d
            from head, (values ${sql.join(values)}) as v(e, n, i, p, t, a, d)
            returning seq`.compile(db);
        }
        // SQLite: no RETURNING (the last number is the insert's last rowid), and no lookups when
        // the unit knew every row's project
        const base = sql`coalesce((select s.seq from sqlite_sequence s where s.name = 'instance_events'), 0)`;
        const values = indexes.map(
          (k) =>
            sql`(${base} + ${p(`e${k}`)}, ${p(`n${k}`)}, ${p(`i${k}`)}, ${projectsKnown ? p(`p${k}`) : project(p(`i${k}`), p(`p${k}`))}, ${p(`t${k}`)}, ${p(`a${k}`)}, ${p(`d${k}`)})`,
        );
        return sql`insert into instance_events (seq, event_count, instance_id, project_id, type, at, data)
          values ${sql.join(values)}`.compile(db);
      },
    }));
    this.appendStmts.set(key, stmt);
    return stmt;
  }
}
