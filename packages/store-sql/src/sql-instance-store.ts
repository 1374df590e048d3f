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
import { isDuplicate } from './errors.js';
import { PreparedStatement } from './statement.js';

const KNOWN_REVISIONS_MAX = 50_000;

/**
 * {@link InstanceStore} on SQL: the instance as JSON, compare-and-set on `revision`.
 *
 * The store remembers the last record it read or wrote per instance (bounded). An update whose
 * expected revision is the remembered one builds the new record from it and writes it with one
 * conditional `UPDATE ... WHERE revision = expected`, without reading first. This is safe with
 * several processes: a record's revision only grows, so a record at the expected revision is
 * the remembered one, and any other writer makes the conditional update miss (a conflict).
 * When the database is exclusive to this process, `get` answers from the remembered record too.
 */
export class SqlInstanceStore implements InstanceStore {
  private readonly known = new Map<string, Instance>();
  private readonly insertStmt;
  private readonly getStmt;
  private readonly updateStmt;
  private readonly removeStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.insertStmt = PreparedStatement.of<{
      id: string;
      projectId: string;
      hostId: string | null;
      taskState: string | null;
      revision: number;
      data: string;
    }>((p) =>
      db.insertInto('instances').values({
        id: p('id'),
        project_id: p('projectId'),
        host_id: p('hostId'),
        task_state: p('taskState'),
        revision: p('revision'),
        data: p('data'),
      }),
    );
    this.getStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.selectFrom('instances').select('data').where('id', '=', p('id')),
    );
    this.updateStmt = PreparedStatement.of<{
      id: string;
      expected: number;
      revision: number;
      hostId: string | null;
      taskState: string | null;
      data: string;
    }>((p) =>
      db
        .updateTable('instances')
        .set({ data: p('data'), revision: p('revision'), host_id: p('hostId'), task_state: p('taskState') })
        .where('id', '=', p('id'))
        .where('revision', '=', p('expected')),
    );
    this.removeStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.deleteFrom('instances').where('id', '=', p('id')),
    );
  }

  async insert(instance: Instance): Promise<void> {
    try {
      await this.database.exec.run(
        this.insertStmt.bind({
          id: instance.id,
          projectId: instance.projectId,
          hostId: instance.hostId,
          taskState: instance.taskState,
          revision: instance.revision,
          data: JSON.stringify(instance),
        }),
      );
    } catch (e) {
      if (isDuplicate(e)) throw new DuplicateError('instance', instance.id);
      throw e;
    }
    this.remember(instance);
  }

  async get(id: string): Promise<Instance | undefined> {
    if (this.database.exclusive) {
      // nobody else can write this database: the record last written here is the stored one
      const known = this.known.get(id);
      if (known) return known;
    }
    const { rows } = await this.database.exec.run<{ data: string }>(this.getStmt.bind({ id }));
    if (!rows[0]) {
      this.known.delete(id);
      return undefined;
    }
    const instance = JSON.parse(rows[0].data) as Instance;
    this.remember(instance);
    return instance;
  }

  async update(id: string, expectedRevision: number, patch: InstancePatch, now: number): Promise<Instance> {
    let current = this.known.get(id);
    if (current?.revision !== expectedRevision) current = await this.get(id);
    if (!current) throw new NotFoundError('instance', id);
    if (current.revision !== expectedRevision)
      throw new RevisionConflictError('instance', id, expectedRevision, current.revision);
    const next: Instance = { ...current, ...patch, revision: current.revision + 1, updatedAt: now };
    const { affected } = await this.database.exec.run(
      this.updateStmt.bind({
        id,
        expected: expectedRevision,
        revision: next.revision,
        hostId: next.hostId,
        taskState: next.taskState,
        data: JSON.stringify(next),
      }),
    );
    if (affected === 0) {
      const fresh = await this.get(id);
      if (!fresh) throw new NotFoundError('instance', id);
      throw new RevisionConflictError('instance', id, expectedRevision, fresh.revision);
    }
    this.remember(next);
    return next;
  }

  async remove(id: string): Promise<void> {
    this.known.delete(id);
    await this.database.exec.run(this.removeStmt.bind({ id }));
    this.known.delete(id); // a read queued before the delete may have remembered the record
  }

  async list(filter: InstanceFilter = {}): Promise<Instance[]> {
    let q = this.database.db.selectFrom('instances').select('data');
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
    if (filter.hostId !== undefined) q = q.where('host_id', '=', filter.hostId);
    if (filter.withTask) q = q.where('task_state', 'is not', null);
    const { rows } = await this.database.exec.run<{ data: string }>(q.compile());
    return rows.map((r) => JSON.parse(r.data) as Instance);
  }

  private remember(instance: Instance): void {
    const known = this.known.get(instance.id);
    if (known && known.revision > instance.revision) return;
    if (!known && this.known.size >= KNOWN_REVISIONS_MAX) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    this.known.set(instance.id, instance);
  }
}
