import type { ActionStore, InstanceAction } from '@nova-lfs/core';
import type { SqlDatabase } from './database.js';

/** {@link ActionStore} on SQL: actions in insertion order per instance; history kept after delete. */
export class SqlActionStore implements ActionStore {
  constructor(private readonly database: SqlDatabase) {}

  async start(action: InstanceAction): Promise<void> {
    await this.database.db
      .insertInto('instance_actions')
      .values({
        id: action.id,
        instance_id: action.instanceId,
        result: action.result,
        data: JSON.stringify(action),
      })
      .execute();
  }

  async finish(
    actionId: string,
    result: Pick<InstanceAction, 'result' | 'finishedAt' | 'fault'>,
  ): Promise<void> {
    const row = await this.database.db
      .selectFrom('instance_actions')
      .select('data')
      .where('id', '=', actionId)
      .executeTakeFirst();
    if (!row) return;
    const done: InstanceAction = { ...(JSON.parse(row.data) as InstanceAction), ...result };
    await this.database.db
      .updateTable('instance_actions')
      .set({ result: done.result, data: JSON.stringify(done) })
      .where('id', '=', actionId)
      .execute();
  }

  async list(instanceId: string): Promise<InstanceAction[]> {
    const rows = await this.database.db
      .selectFrom('instance_actions')
      .select('data')
      .where('instance_id', '=', instanceId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => JSON.parse(r.data) as InstanceAction);
  }

  async listPending(): Promise<InstanceAction[]> {
    const rows = await this.database.db
      .selectFrom('instance_actions')
      .select('data')
      .where('result', '=', 'pending')
      .orderBy('seq')
      .execute();
    return rows.map((r) => JSON.parse(r.data) as InstanceAction);
  }

  async instanceDeleted(): Promise<void> {
    // durable history: kept (purging old history is an operator task)
  }
}
