import {
  DuplicateError,
  type Instance,
  type InstanceFilter,
  type InstancePatch,
  NotFoundError,
  RevisionConflictError,
} from '@nova-lfs/core';
import type { InstanceStore } from '@nova-lfs/core/ports';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import { isDuplicate } from './errors.js';
import type { BoundStatement } from './statement.js';
import { PreparedStatement } from './statement.js';

const KNOWN_REVISIONS_MAX = 50_000;

/** The columns of an instance row, as statement parameters (`data` is the record's JSON). */
export interface InstanceRow {
  readonly [key: string]: unknown;
  readonly id: string;
  readonly projectId: string;
  readonly hostId: string | null;
  readonly taskState: string | null;
  readonly vmState: string;
  readonly name: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly revision: number;
  readonly data: string;
}

/** The row an instance record is stored as. */
export function instanceRow(instance: Instance): InstanceRow {
  return {
    id: instance.id,
    projectId: instance.projectId,
    hostId: instance.hostId,
    taskState: instance.taskState,
    vmState: instance.vmState,
    name: instance.name,
    createdAt: instance.createdAt,
    updatedAt: instance.updatedAt,
    revision: instance.revision,
    data: JSON.stringify(instance),
  };
}

/**
 * {@link InstanceStore} on SQL: the instance as JSON, compare-and-set on `revision`; the columns
 * lists filter and sort on (project, host, task, vm state, name, timestamps) beside it.
 *
 * The store remembers the last record it read or wrote per instance (bounded), including what
 * units of work wrote ({@link SqlInstanceStore.noteWritten}). An update whose expected revision
 * is the remembered one builds the new record from it and writes it with one conditional
 * `UPDATE ... WHERE revision = expected`, without reading first. This is safe with several
 * processes: a record's revision only grows, so a record at the expected revision is the
 * remembered one, and any other writer makes the conditional update miss (a conflict). When the
 * database is exclusive to this process, `get` answers from the remembered record too.
 *
 * `list` sorts by (`created_at`, `id`) with ids compared byte-wise (an index on those columns, and
 * one on the project before them, serves it); its `name` filter is a substring match ignoring case
 * (ASCII letters only on SQLite).
 */
export class SqlInstanceStore implements InstanceStore {
  private readonly known = new Map<string, Instance>();
  private readonly insertStmt;
  private readonly getStmt;
  private readonly updateStmt;
  private readonly removeStmt;
  private readonly removeAtStmt;
  private readonly keyStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.insertStmt = PreparedStatement.of<InstanceRow>((p) =>
      db.insertInto('instances').values({
        id: p('id'),
        project_id: p('projectId'),
        host_id: p('hostId'),
        task_state: p('taskState'),
        vm_state: p('vmState'),
        name: p('name'),
        created_at: p('createdAt'),
        updated_at: p('updatedAt'),
        revision: p('revision'),
        data: p('data'),
      }),
    );
    this.getStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.selectFrom('instances').select('data').where('id', '=', p('id')),
    );
    this.updateStmt = PreparedStatement.of<InstanceRow & { expected: number }>((p) =>
      db
        .updateTable('instances')
        .set({
          data: p('data'),
          revision: p('revision'),
          host_id: p('hostId'),
          task_state: p('taskState'),
          vm_state: p('vmState'),
          name: p('name'),
          updated_at: p('updatedAt'),
        })
        .where('id', '=', p('id'))
        .where('revision', '=', p('expected')),
    );
    this.removeStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.deleteFrom('instances').where('id', '=', p('id')),
    );
    this.removeAtStmt = PreparedStatement.of<{ id: string; revision: number }>((p) =>
      db.deleteFrom('instances').where('id', '=', p('id')).where('revision', '=', p('revision')),
    );
    this.keyStmt = PreparedStatement.of<{ id: string }>((p) =>
      db.selectFrom('instances').select(['created_at', 'revision']).where('id', '=', p('id')),
    );
  }

  async insert(instance: Instance): Promise<void> {
    try {
      await this.database.exec.run(this.insertStatement(instance));
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
    const { affected } = await this.database.exec.run(this.updateStatement(next, expectedRevision));
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
    await this.database.exec.run(this.removeStatement(id));
    this.known.delete(id); // a read queued before the delete may have remembered the record
  }

  async list(filter: InstanceFilter = {}): Promise<Instance[]> {
    const pg = this.database.dialect === 'postgres';
    // ids compare byte-wise on both dialects (the indexes are built so on PostgreSQL)
    const byteWise = sql.raw(pg ? 'id collate "C"' : 'id');
    let after: { createdAt: number; id: string } | undefined;
    if (filter.marker !== undefined) {
      const { rows } = await this.database.exec.run<{ created_at: number | string | null }>(
        this.keyStmt.bind({ id: filter.marker }),
      );
      if (!rows[0]) throw new NotFoundError('instance', filter.marker, 'marker');
      after = { createdAt: Number(rows[0].created_at), id: filter.marker };
    }
    if (filter.status?.length === 0 || filter.limit === 0) return [];
    let q = this.database.db.selectFrom('instances').select('data');
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
    if (filter.hostId !== undefined) q = q.where('host_id', '=', filter.hostId);
    if (filter.withTask) q = q.where('task_state', 'is not', null);
    if (filter.status) q = q.where('vm_state', 'in', [...filter.status]);
    if (filter.name !== undefined) {
      const find = pg ? 'strpos' : 'instr';
      q = q.where(sql<boolean>`${sql.raw(find)}(lower(name), lower(${filter.name})) > 0`);
    }
    if (filter.changesSince !== undefined) q = q.where('updated_at', '>=', filter.changesSince);
    if (after) q = q.where(sql<boolean>`(created_at, ${byteWise}) > (${after.createdAt}, ${after.id})`);
    q = q.orderBy('created_at').orderBy(byteWise);
    if (filter.limit !== undefined) q = q.limit(Math.max(0, Math.floor(filter.limit)));
    const { rows } = await this.database.exec.run<{ data: string }>(q.compile());
    return rows.map((r) => JSON.parse(r.data) as Instance);
  }

  /** The statement inserting `instance` (for a unit of work; fails on a duplicate id). */
  insertStatement(instance: Instance): BoundStatement {
    return this.insertStmt.bind(instanceRow(instance));
  }

  /**
   * The statement replacing the record with `instance` if its stored revision is `expected`
   * (for a unit of work: it changes no row on a lost update or a missing record).
   */
  updateStatement(instance: Instance, expected: number): BoundStatement {
    return this.updateStmt.bind({ ...instanceRow(instance), expected });
  }

  /** The statement removing the record (idempotent). */
  removeStatement(id: string): BoundStatement {
    return this.removeStmt.bind({ id });
  }

  /** The statement reading the stored revision (`revision` column; no row when gone). */
  /** Deletes the record if its revision is `revision` (`affected` says whether it did). */
  removeAtStatement(id: string, revision: number): BoundStatement {
    return this.removeAtStmt.bind({ id, revision });
  }

  revisionStatement(id: string): BoundStatement {
    return this.keyStmt.bind({ id });
  }

  /** The project of an instance this store remembers (no read), if it remembers it. */
  knownProject(id: string): string | undefined {
    return this.known.get(id)?.projectId;
  }

  /** Remembers a record a unit of work committed (so the remembered records stay the stored ones). */
  noteWritten(instance: Instance): void {
    this.remember(instance);
  }

  /**
   * Forgets an instance: before a unit of work removing it commits (a read meanwhile must not
   * revive it) and once it has.
   */
  forget(id: string): void {
    this.known.delete(id);
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
