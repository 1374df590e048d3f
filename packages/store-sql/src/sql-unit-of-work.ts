import {
  DuplicateError,
  type InstanceEvent,
  type LoggedEvent,
  NotFoundError,
  type QuotaLimits,
  RevisionConflictError,
  type ServerGroup,
} from '@nova-lfs/core';
import type { StoreWrite, UnitOfWork } from '@nova-lfs/core/ports';
import type { SqlDatabase } from './database.js';
import { ContentionError, isDuplicate } from './errors.js';
import { PostgresUnitStatements, PreconditionState } from './postgres-unit-statements.js';
import type { SqlActionStore } from './sql-action-store.js';
import type { SqlServerGroupStore } from './sql-catalog-stores.js';
import type { SqlEventLog } from './sql-event-log.js';
import type { SqlRunner, StatementResult } from './sql-executor.js';
import type { SqlInstanceStore } from './sql-instance-store.js';
import type { SqlQuotaEngine, UsageRow } from './sql-quota-engine.js';
import type { BoundStatement } from './statement.js';

/** The SQL stores a {@link SqlUnitOfWork} writes (their statements, and the instance cache). */
export interface SqlUnitStores {
  readonly instances: SqlInstanceStore;
  readonly actions: SqlActionStore;
  readonly groups: SqlServerGroupStore;
  readonly eventLog: SqlEventLog;
  /** The quota engine whose usage `quota.consume` and `quota.release` writes change. */
  readonly quota: SqlQuotaEngine;
}

/** Tries of a PostgreSQL unit whose quota consumption was refused but fits when explained. */
const QUOTA_RACE_TRIES = 20;

/**
 * {@link UnitOfWork} on SQL: a unit's writes commit in one transaction, all or none.
 *
 * - **SQLite**: one `SqlExecutor.unit` (a savepoint inside the group commit). Each write's
 *   precondition is checked from the rows it changed; a failed one throws the typed error, which
 *   rolls the savepoint back: nothing of the unit stays, other units of the group commit.
 * - **PostgreSQL**: one `SqlExecutor.runAll`, so the whole unit is one submission to the group
 *   commit (one round trip, batched with other callers' statements). Preconditions are checked
 *   inside SQL ({@link PostgresUnitStatements}): a failed one raises and aborts the transaction;
 *   the raised SQLSTATE and DETAIL become the typed error here.
 *
 * A unit's events are one statement (per 16 rows: a row per run of one instance's events), in
 * the order given ({@link SqlEventLog}). On
 * PostgreSQL it takes the log's counter row, held until commit, so units that log events commit
 * in the order of their sequence numbers; it goes first in the unit: a batch then takes the
 * counter before the rows its units write, so batches of two processes meet at the counter
 * instead of each holding rows the other waits for (a deadlock still costs only a retry: the group
 * commit runs a refused batch's submissions again). On SQLite (one writer) it goes last. The
 * instance store's remembered records follow what a unit committed.
 *
 * Quota writes change the project's usage row in the unit's transaction: `quota.consume` is one
 * conditional upsert (the limits checked against usage plus in-flight reservations under the
 * row's lock, so concurrent units of every process admit exactly what fits), `quota.release` one
 * update.
 *
 * Errors: RevisionConflictError (an `instance.update` lost the race), NotFoundError (an updated
 * instance or a group gaining members is gone), DuplicateError (an inserted instance or started
 * action exists), QuotaExceededError (a `quota.consume` does not fit); anything else the
 * database reports as the executor throws it.
 */
export class SqlUnitOfWork implements UnitOfWork {
  private readonly postgres: PostgresUnitStatements | undefined;
  readonly quota: SqlQuotaEngine;

  constructor(
    private readonly database: SqlDatabase,
    private readonly stores: SqlUnitStores,
  ) {
    if (database.dialect === 'postgres') this.postgres = new PostgresUnitStatements(database);
    this.quota = stores.quota;
  }

  async commit(writes: readonly StoreWrite[]): Promise<readonly LoggedEvent[]> {
    if (writes.length === 0) return [];
    const { instances } = this.stores;
    // the projects of records being removed, for their events, before they are forgotten: a read
    // answered between now and the commit must not remember a record being removed
    const removed = new Map<string, string>();
    for (const w of writes) {
      if (w.kind !== 'instance.remove') continue;
      const project = instances.knownProject(w.id);
      if (project !== undefined) removed.set(w.id, project);
      instances.forget(w.id);
    }
    let logged: readonly LoggedEvent[];
    try {
      logged = this.postgres
        ? await this.commitPostgres(this.postgres, writes, removed)
        : await this.commitSqlite(writes, removed);
    } catch (e) {
      // a group commit that failed after this unit's writes were remembered: forget them
      for (const w of writes) {
        if (w.kind === 'instance.insert' || w.kind === 'instance.update') instances.forget(w.instance.id);
      }
      throw e;
    }
    for (const w of writes) {
      // SQLite remembered its writes inside the unit already
      if (this.postgres && (w.kind === 'instance.insert' || w.kind === 'instance.update')) {
        instances.noteWritten(w.instance);
      } else if (w.kind === 'instance.remove') instances.forget(w.id);
    }
    return logged;
  }

  private async commitSqlite(
    writes: readonly StoreWrite[],
    removed: ReadonlyMap<string, string>,
  ): Promise<readonly LoggedEvent[]> {
    const { instances, actions, groups, eventLog, quota } = this.stores;
    // the limits a consumption is checked against, read before the unit holds the connection
    const limits = new Map<string, QuotaLimits>();
    for (const w of writes) {
      if (w.kind === 'quota.consume' && !limits.has(w.projectId))
        limits.set(w.projectId, await quota.limitsForUnit(w.projectId));
    }
    return this.database.exec.unit(async (tx) => {
      const events: InstanceEvent[] = [];
      for (const w of writes) {
        switch (w.kind) {
          case 'instance.insert':
            await runOrDuplicate(tx, instances.insertStatement(w.instance), 'instance', w.instance.id);
            break;
          case 'instance.update': {
            const { affected } = await tx.run(instances.updateStatement(w.instance, w.expectedRevision));
            if (affected === 0) {
              const [row] = (await tx.run<{ revision: number }>(instances.revisionStatement(w.instance.id)))
                .rows;
              if (!row) throw new NotFoundError('instance', w.instance.id);
              throw new RevisionConflictError(
                'instance',
                w.instance.id,
                w.expectedRevision,
                Number(row.revision),
              );
            }
            break;
          }
          case 'instance.remove':
            if (w.expectedRevision === undefined) {
              await tx.run(instances.removeStatement(w.id));
              break;
            }
            if ((await tx.run(instances.removeAtStatement(w.id, w.expectedRevision))).affected === 0) {
              const [row] = (await tx.run<{ revision: number }>(instances.revisionStatement(w.id))).rows;
              if (!row) throw new NotFoundError('instance', w.id);
              throw new RevisionConflictError('instance', w.id, w.expectedRevision, Number(row.revision));
            }
            break;
          case 'action.start':
            await runOrDuplicate(tx, actions.startStatement(w.action), 'action', w.action.id);
            break;
          case 'action.finish':
            await tx.run(actions.finishStatement(w.action.id, w.action));
            break;
          case 'group.addMembers': {
            const group = await readGroup(tx, groups, w.groupId);
            if (!group) throw new NotFoundError('serverGroup', w.groupId);
            const added = [...new Set(w.instanceIds)].filter((id) => !group.members.includes(id));
            if (added.length)
              await tx.run(groups.setStatement({ ...group, members: [...group.members, ...added] }));
            break;
          }
          case 'group.removeMember': {
            const group = await readGroup(tx, groups, w.groupId);
            if (group?.members.includes(w.instanceId)) {
              await tx.run(
                groups.setStatement({ ...group, members: group.members.filter((m) => m !== w.instanceId) }),
              );
            }
            break;
          }
          case 'quota.consume': {
            const given = limits.get(w.projectId)!;
            if ((await tx.run(quota.consumeStatement(w.projectId, w.deltas, given))).affected > 0) break;
            // refused, or the project's first use: under the write lock, the row read now is the
            // one the update saw
            const [row] = (await tx.run<UsageRow>(quota.usageStatement(w.projectId))).rows;
            if (!row) {
              const first = await tx.run(quota.firstConsumeStatement(w.projectId, w.deltas, given));
              if (first.affected > 0) break;
            }
            throw (
              quota.refusal(w.projectId, w.deltas, given, row) ??
              new ContentionError('quota consumption', w.projectId, 1)
            );
          }
          case 'quota.release':
            await tx.run(quota.releaseStatement(w.projectId, w.deltas));
            break;
          case 'event':
            events.push(w.event);
            break;
        }
      }
      // the connection sees these writes from now on, before the group commit ends: so must reads
      // answered from the cache (else a retry of a lost update would read the old revision again)
      for (const w of writes) {
        if (w.kind === 'instance.insert' || w.kind === 'instance.update') instances.noteWritten(w.instance);
      }
      if (events.length === 0) return [];
      const append = eventLog.append(events, this.projectsOf(writes, removed));
      const results = [];
      for (const s of append.statements) results.push(await tx.run(s));
      return append.logged(results);
    });
  }

  /**
   * Runs a unit on PostgreSQL; a quota consumption refused in SQL becomes the QuotaExceededError
   * the project's row explains, or the unit runs again if it fits now (usage went down meanwhile).
   */
  private async commitPostgres(
    checked: PostgresUnitStatements,
    writes: readonly StoreWrite[],
    removed: ReadonlyMap<string, string>,
  ): Promise<readonly LoggedEvent[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.commitPostgresOnce(checked, writes, removed);
      } catch (e) {
        const projectId = quotaRefusalOf(e);
        if (projectId === undefined) throw e;
        let asked = { instances: 0, cores: 0, ramMb: 0 };
        for (const w of writes) {
          if (w.kind !== 'quota.consume' || w.projectId !== projectId) continue;
          asked = {
            instances: asked.instances + w.deltas.instances,
            cores: asked.cores + w.deltas.cores,
            ramMb: asked.ramMb + w.deltas.ramMb,
          };
        }
        const refused = await this.stores.quota.explainRefusal(projectId, asked);
        if (refused) throw refused;
        if (attempt >= QUOTA_RACE_TRIES) throw new ContentionError('quota consumption', projectId, attempt);
      }
    }
  }

  private async commitPostgresOnce(
    checked: PostgresUnitStatements,
    writes: readonly StoreWrite[],
    removed: ReadonlyMap<string, string>,
  ): Promise<readonly LoggedEvent[]> {
    const { instances, actions, eventLog, quota } = this.stores;
    const statements: BoundStatement[] = [];
    const events: InstanceEvent[] = [];
    for (const w of writes) {
      switch (w.kind) {
        case 'instance.insert':
          statements.push(checked.insertInstance(w.instance));
          break;
        case 'instance.update':
          statements.push(checked.updateInstance(w.instance, w.expectedRevision));
          break;
        case 'instance.remove':
          statements.push(
            w.expectedRevision === undefined
              ? instances.removeStatement(w.id)
              : checked.removeInstance(w.id, w.expectedRevision),
          );
          break;
        case 'action.start':
          statements.push(actions.startStatement(w.action));
          break;
        case 'action.finish':
          statements.push(actions.finishStatement(w.action.id, w.action));
          break;
        case 'group.addMembers':
          statements.push(checked.addMembers(w.groupId, w.instanceIds));
          break;
        case 'group.removeMember':
          statements.push(checked.removeMember(w.groupId, w.instanceId));
          break;
        case 'quota.consume':
          // the statement reads the project's own limits; the defaults fill in
          statements.push(
            quota.consumeStatement(w.projectId, w.deltas, await quota.limitsForUnit(w.projectId)),
          );
          break;
        case 'quota.release':
          statements.push(quota.releaseStatement(w.projectId, w.deltas));
          break;
        case 'event':
          events.push(w.event);
          break;
      }
    }
    const append = events.length ? eventLog.append(events, this.projectsOf(writes, removed)) : undefined;
    if (append) statements.unshift(...append.statements);
    let results: Array<StatementResult<Record<string, unknown>>>;
    try {
      results = await this.database.exec.runAll(statements);
    } catch (e) {
      throw typedUnitError(e);
    }
    return append ? append.logged(results.slice(0, append.statements.length)) : [];
  }

  /** Projects of the unit's instances, as far as the unit and the instance store know them. */
  private projectsOf(
    writes: readonly StoreWrite[],
    removed: ReadonlyMap<string, string>,
  ): (instanceId: string) => string | undefined {
    const projects = new Map<string, string>(removed);
    for (const w of writes) {
      if (w.kind === 'instance.insert' || w.kind === 'instance.update')
        projects.set(w.instance.id, w.instance.projectId);
    }
    return (id) => projects.get(id) ?? this.stores.instances.knownProject(id);
  }
}

async function runOrDuplicate(
  tx: SqlRunner,
  statement: BoundStatement,
  kind: string,
  id: string,
): Promise<void> {
  try {
    await tx.run(statement);
  } catch (e) {
    if (isDuplicate(e)) throw new DuplicateError(kind, id);
    throw e;
  }
}

async function readGroup(
  tx: SqlRunner,
  groups: SqlServerGroupStore,
  id: string,
): Promise<ServerGroup | undefined> {
  const [row] = (await tx.run<{ data: string }>(groups.getStatement(id))).rows;
  return row ? (JSON.parse(row.data) as ServerGroup) : undefined;
}

/** The project whose quota consumption a failed PostgreSQL unit raised (as typed by typedUnitError). */
function quotaRefusalOf(e: unknown): string | undefined {
  return e instanceof QuotaRefusal ? e.projectId : undefined;
}

/** A unit's quota consumption refused inside SQL: explained by the quota engine from its row. */
class QuotaRefusal extends Error {
  constructor(readonly projectId: string) {
    super(`quota of project ${projectId}: consumption refused`);
  }
}

/** What a database error (raw, or a typed store error keeping it as `cause`) says. */
interface DatabaseFailure {
  readonly sqlState: string;
  readonly detail?: string;
  readonly table?: string;
}

/** The first error along the `cause` chain that carries a SQLSTATE. */
function failureOf(e: unknown): DatabaseFailure | undefined {
  for (let x = e, depth = 0; x && typeof x === 'object' && depth < 5; depth++) {
    const err = x as { code?: unknown; detail?: unknown; table?: unknown; cause?: unknown };
    // a raw pg error has the SQLSTATE as `code` and its DETAIL; a typed store error keeps it as cause
    if (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)) {
      return {
        sqlState: err.code,
        ...(typeof err.detail === 'string' ? { detail: err.detail } : {}),
        ...(typeof err.table === 'string' ? { table: err.table } : {}),
      };
    }
    x = err.cause;
  }
  return undefined;
}

/**
 * The typed core error for a failed PostgreSQL unit: a raised precondition (DETAIL names the
 * record) or a unique violation of a started action; anything else unchanged.
 */
function typedUnitError(e: unknown): unknown {
  const failure = failureOf(e);
  if (!failure) return e;
  const detail = (): { kind?: string; id?: string; expected?: number; actual?: number } => {
    try {
      return JSON.parse(failure.detail ?? '{}');
    } catch {
      return {};
    }
  };
  switch (failure.sqlState) {
    case PreconditionState.RevisionConflict: {
      const d = detail();
      return new RevisionConflictError(
        d.kind ?? 'instance',
        d.id ?? '',
        Number(d.expected),
        Number(d.actual),
      );
    }
    case PreconditionState.NotFound: {
      const d = detail();
      return new NotFoundError(d.kind ?? 'instance', d.id ?? '');
    }
    case PreconditionState.QuotaRefused:
      return new QuotaRefusal(detail().id ?? '');
    case PreconditionState.Duplicate: {
      const d = detail();
      return new DuplicateError(d.kind ?? 'instance', d.id ?? '');
    }
    case '23505':
      if (failure.table === 'instance_actions') {
        return new DuplicateError('action', /\(id\)=\((.*)\)/.exec(failure.detail ?? '')?.[1] ?? '');
      }
      return e;
    default:
      return e;
  }
}
