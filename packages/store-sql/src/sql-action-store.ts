import type { Fault, InstanceAction } from '@nova-lfs/core';
import type { ActionStore } from '@nova-lfs/core/ports';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

interface ActionRow {
  data: string;
  result: string;
  finished_at: number | string | null;
  fault: string | null;
}

/**
 * {@link ActionStore} on SQL: actions in insertion order per instance; history kept after delete.
 * The action as started is one JSON column; how it ended has columns of its own, so finishing an
 * action is a single update.
 */
export class SqlActionStore implements ActionStore {
  private readonly startStmt;
  private readonly finishStmt;
  private readonly listStmt;
  private readonly pendingStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.startStmt = PreparedStatement.of<{ id: string; instanceId: string; result: string; data: string }>(
      (p) =>
        db.insertInto('instance_actions').values({
          id: p('id'),
          instance_id: p('instanceId'),
          result: p('result'),
          data: p('data'),
        }),
    );
    this.finishStmt = PreparedStatement.of<{
      id: string;
      result: string;
      finishedAt: number | null;
      fault: string | null;
    }>((p) =>
      db
        .updateTable('instance_actions')
        .set({ result: p('result'), finished_at: p('finishedAt'), fault: p('fault') })
        .where('id', '=', p('id')),
    );
    this.listStmt = PreparedStatement.of<{ instanceId: string }>((p) =>
      db
        .selectFrom('instance_actions')
        .select(['data', 'result', 'finished_at', 'fault'])
        .where('instance_id', '=', p('instanceId'))
        .orderBy('seq'),
    );
    this.pendingStmt = PreparedStatement.of<Record<string, never>>(() =>
      db
        .selectFrom('instance_actions')
        .select(['data', 'result', 'finished_at', 'fault'])
        // a literal, so that the partial index `actions_pending` applies
        .where(sql<boolean>`result = 'pending'`)
        .orderBy('seq'),
    );
  }

  async start(action: InstanceAction): Promise<void> {
    await this.database.exec.run(this.startStatement(action));
  }

  async finish(
    actionId: string,
    result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>,
  ): Promise<void> {
    await this.database.exec.run(this.finishStatement(actionId, result));
  }

  /** The statement recording a started action (for a unit of work; fails on a duplicate id). */
  startStatement(action: InstanceAction): BoundStatement {
    return this.startStmt.bind({
      id: action.id,
      instanceId: action.instanceId,
      result: action.result,
      data: JSON.stringify(action),
    });
  }

  /** The statement recording how an action ended (for a unit of work; no row if it is unknown). */
  finishStatement(
    actionId: string,
    result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>,
  ): BoundStatement {
    return this.finishStmt.bind({
      id: actionId,
      result: result.result,
      finishedAt: result.finishedAt,
      fault: result.fault ? JSON.stringify(result.fault) : null,
    });
  }

  async list(instanceId: string): Promise<InstanceAction[]> {
    const { rows } = await this.database.exec.run<ActionRow>(this.listStmt.bind({ instanceId }));
    return rows.map(actionOf);
  }

  async listPending(): Promise<InstanceAction[]> {
    const { rows } = await this.database.exec.run<ActionRow>(this.pendingStmt.bind({}));
    return rows.map(actionOf);
  }

  async instanceDeleted(): Promise<void> {
    // durable history: kept (purging old history is an operator task)
  }
}

function actionOf(row: ActionRow): InstanceAction {
  const started = JSON.parse(row.data) as InstanceAction;
  if (row.result === 'pending' && row.finished_at === null) return started;
  return {
    ...started,
    result: row.result as InstanceAction['result'],
    finishedAt: row.finished_at === null ? started.finishedAt : Number(row.finished_at),
    fault: row.fault === null ? started.fault : (JSON.parse(row.fault) as Fault),
  };
}
