import type { EventLog, EventLogFilter, InstanceEvent, LoggedEvent } from '@nova-lfs/core';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import type { StatementResult } from './sql-executor.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

/** The largest magnitude a JavaScript number holds exactly: "no bound" for prune's parameters. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

/** Statements appending events, and how to read their sequence numbers from the results. */
export interface EventAppend {
  /** Run in order, atomically with the rest of the unit (they lock the log's head until commit). */
  readonly statements: readonly BoundStatement[];
  /** The events as logged, from the results of {@link EventAppend.statements} (in order). */
  logged(results: ReadonlyArray<StatementResult<Record<string, unknown>>>): LoggedEvent[];
}

/**
 * The durable {@link EventLog} on SQL (table `instance_events`), written through units of work
 * ({@link SqlEventLog.append} gives their statements).
 *
 * Sequence numbers come from one counter row (`instance_event_head`), bumped by the statement
 * that inserts a unit's events, in the unit's transaction. The row lock is held until that
 * transaction commits, so a transaction that takes higher numbers commits after every one that
 * took lower numbers: numbers become visible in order, and a reader polling with a cursor
 * (`read(since)`) never skips a lower number that commits later, as it could with a sequence
 * (`bigserial` numbers are taken at insert time and commit in any order). Group commit makes that
 * one lock per batch of units; units of other processes queue behind it. On SQLite the single
 * writer orders commits anyway; the counter is shared so that both dialects behave alike.
 *
 * Each event row keeps its instance's project (from the unit's records, an `instance.created`
 * event, the instance row, or the instance's earlier events), so reads filter by project.
 */
export class SqlEventLog implements EventLog {
  private readonly appendStmt;
  private readonly bumpStmt;
  private readonly readAll;
  private readonly readInstance;
  private readonly readProject;
  private readonly readBoth;
  private readonly boundsStmt;
  private readonly pruneStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    const pg = database.dialect === 'postgres';
    // a unit's events are one JSON array parameter: [{ i: instance, p: project|null, t, a, d: json }]
    this.appendStmt = PreparedStatement.of<{ events: string }>((p) => ({
      compile: () =>
        (pg
          ? sql`with entries as (
                select e.ord, e.doc from json_array_elements(${p('events')}::json) with ordinality as e(doc, ord)
              ), head as (
                update instance_event_head set seq = seq + (select count(*) from entries) where id = 1
                returning seq - (select count(*) from entries) as base
              )
              insert into instance_events (seq, instance_id, project_id, type, at, data)
              select head.base + entries.ord, entries.doc->>'i',
                coalesce(entries.doc->>'p',
                  (select i.project_id from instances i where i.id = entries.doc->>'i'),
                  (select x.project_id from instance_events x
                    where x.instance_id = entries.doc->>'i' and x.project_id is not null
                    order by x.seq desc limit 1)),
                entries.doc->>'t', (entries.doc->>'a')::bigint, entries.doc->>'d'
              from head cross join entries
              returning seq`
          : sql`insert into instance_events (seq, instance_id, project_id, type, at, data)
              select h.seq + e.key + 1, json_extract(e.value, '$.i'),
                coalesce(json_extract(e.value, '$.p'),
                  (select i.project_id from instances i where i.id = json_extract(e.value, '$.i')),
                  (select x.project_id from instance_events x
                    where x.instance_id = json_extract(e.value, '$.i') and x.project_id is not null
                    order by x.seq desc limit 1)),
                json_extract(e.value, '$.t'), json_extract(e.value, '$.a'), json_extract(e.value, '$.d')
              from instance_event_head h, json_each(${p('events')}) e
              where h.id = 1`
        ).compile(db),
    }));
    // SQLite: no data-modifying CTE, so the head moves in a second statement of the same unit
    this.bumpStmt = PreparedStatement.of<{ count: number }>((p) =>
      db
        .updateTable('instance_event_head')
        .set((eb) => ({ seq: eb('seq', '+', p('count')) }))
        .where('id', '=', 1)
        .returning('seq'),
    );
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
        sql`select (select min(seq) from instance_events) as oldest,
              (select seq from instance_event_head where id = 1) as head`.compile(db),
    }));
    // drops the oldest events up to the first one that is both among the newest `keepLast` and
    // not older than `olderThan`: the log stays one contiguous range of sequence numbers
    this.pruneStmt = PreparedStatement.of<{ keepLast: number; olderThan: number }>((p) => ({
      compile: () =>
        sql`delete from instance_events where seq < coalesce(
              (select min(k.seq) from instance_events k
                where k.seq > (select h.seq from instance_event_head h where h.id = 1) - ${p('keepLast')}
                  and k.at >= ${p('olderThan')}),
              (select h.seq + 1 from instance_event_head h where h.id = 1))`.compile(db),
    }));
  }

  /**
   * The statements that append `events` (in order) inside a unit of work.
   * @param projectOf the project of an instance when the caller knows it (saves the lookup)
   */
  append(
    events: readonly InstanceEvent[],
    projectOf: (instanceId: string) => string | undefined,
  ): EventAppend {
    const entries = events.map((event) => ({
      i: event.instanceId,
      p: event.type === 'instance.created' ? event.instance.projectId : (projectOf(event.instanceId) ?? null),
      t: event.type,
      a: event.at,
      d: JSON.stringify(event),
    }));
    const insert = this.appendStmt.bind({ events: JSON.stringify(entries) });
    if (this.database.dialect === 'postgres') {
      return {
        statements: [insert],
        logged: (results) => {
          const seqs = results[0]!.rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
          return events.map((event, k) => ({ seq: seqs[k]!, event }));
        },
      };
    }
    return {
      statements: [insert, this.bumpStmt.bind({ count: events.length })],
      logged: (results) => {
        const last = Number(results[1]!.rows[0]!.seq);
        return events.map((event, k) => ({ seq: last - events.length + 1 + k, event }));
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
    const { rows } = await this.database.exec.run<{ oldest: number | string | null; head: number | string }>(
      this.boundsStmt.bind({}),
    );
    const row = rows[0]!;
    return { oldest: row.oldest === null ? undefined : Number(row.oldest), head: Number(row.head ?? 0) };
  }
}
