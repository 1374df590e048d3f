import {
  DuplicateError,
  type Instance,
  type InstanceFilter,
  type InstancePatch,
  type InstanceStore,
  NotFoundError,
  RevisionConflictError,
} from '@nova-lfs/core';
import type { SqlDatabase } from './database.js';

/** {@link InstanceStore} on SQL: the instance as JSON, compare-and-set on `revision`. */
export class SqlInstanceStore implements InstanceStore {
  constructor(private readonly database: SqlDatabase) {}

  async insert(instance: Instance): Promise<void> {
    try {
      await this.database.db
        .insertInto('instances')
        .values({
          id: instance.id,
          project_id: instance.projectId,
          host_id: instance.hostId,
          task_state: instance.taskState,
          revision: instance.revision,
          data: JSON.stringify(instance),
        })
        .execute();
    } catch (e) {
      if (/unique|duplicate/i.test((e as Error).message)) throw new DuplicateError('instance', instance.id);
      throw e;
    }
  }

  async get(id: string): Promise<Instance | undefined> {
    const row = await this.database.db
      .selectFrom('instances')
      .select('data')
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? (JSON.parse(row.data) as Instance) : undefined;
  }

  async update(id: string, expectedRevision: number, patch: InstancePatch, now: number): Promise<Instance> {
    const current = await this.get(id);
    if (!current) throw new NotFoundError('instance', id);
    if (current.revision !== expectedRevision)
      throw new RevisionConflictError('instance', id, expectedRevision, current.revision);
    const next: Instance = { ...current, ...patch, revision: current.revision + 1, updatedAt: now };
    const result = await this.database.db
      .updateTable('instances')
      .set({
        data: JSON.stringify(next),
        revision: next.revision,
        host_id: next.hostId,
        task_state: next.taskState,
      })
      .where('id', '=', id)
      .where('revision', '=', expectedRevision)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      const now2 = await this.get(id);
      if (!now2) throw new NotFoundError('instance', id);
      throw new RevisionConflictError('instance', id, expectedRevision, now2.revision);
    }
    return next;
  }

  async remove(id: string): Promise<void> {
    await this.database.db.deleteFrom('instances').where('id', '=', id).execute();
  }

  async list(filter: InstanceFilter = {}): Promise<Instance[]> {
    let q = this.database.db.selectFrom('instances').select('data');
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
    if (filter.hostId !== undefined) q = q.where('host_id', '=', filter.hostId);
    if (filter.withTask) q = q.where('task_state', 'is not', null);
    return (await q.execute()).map((r) => JSON.parse(r.data) as Instance);
  }
}
