import { DuplicateError, NotFoundError, RevisionConflictError } from '../errors.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import type { InstanceFilter, InstanceStore } from '../ports/stores.js';

/** In-memory {@link InstanceStore}: a map of immutable snapshots, compare-and-set on revision. */
export class MemoryInstanceStore implements InstanceStore {
  private readonly records = new Map<string, Instance>();

  async insert(instance: Instance): Promise<void> {
    if (this.records.has(instance.id)) throw new DuplicateError('instance', instance.id);
    this.records.set(instance.id, instance);
  }

  async get(id: string): Promise<Instance | undefined> {
    return this.records.get(id);
  }

  async update(id: string, expectedRevision: number, patch: InstancePatch, now: number): Promise<Instance> {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError('instance', id);
    if (current.revision !== expectedRevision) {
      throw new RevisionConflictError('instance', id, expectedRevision, current.revision);
    }
    const next: Instance = { ...current, ...patch, revision: current.revision + 1, updatedAt: now };
    this.records.set(id, next);
    return next;
  }

  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }

  /** The stored record, synchronously (for a memory unit of work). */
  peek(id: string): Instance | undefined {
    return this.records.get(id);
  }

  /** Stores a record as it is, synchronously (for a memory unit of work that checked it). */
  put(instance: Instance): void {
    this.records.set(instance.id, instance);
  }

  async list(filter: InstanceFilter = {}): Promise<Instance[]> {
    let after: Instance | undefined;
    if (filter.marker !== undefined) {
      after = this.records.get(filter.marker);
      if (!after) throw new NotFoundError('instance', filter.marker, 'marker');
    }
    const status = filter.status ? new Set<string>(filter.status) : undefined;
    const name = filter.name?.toLowerCase();
    const out: Instance[] = [];
    for (const i of this.records.values()) {
      if (filter.projectId !== undefined && i.projectId !== filter.projectId) continue;
      if (filter.hostId !== undefined && i.hostId !== filter.hostId) continue;
      if (filter.withTask && i.taskState === null) continue;
      if (status && !status.has(i.vmState)) continue;
      if (name !== undefined && !i.name.toLowerCase().includes(name)) continue;
      if (filter.changesSince !== undefined && i.updatedAt < filter.changesSince) continue;
      if (after && listOrder(i, after) <= 0) continue;
      out.push(i);
    }
    out.sort(listOrder);
    return filter.limit !== undefined ? out.slice(0, Math.max(0, filter.limit)) : out;
  }

  /** Number of records (for tests and benchmarks). */
  get size(): number {
    return this.records.size;
  }
}

/** The list order: `createdAt`, then `id` (code-unit order, as SQL's byte-wise collation). */
function listOrder(a: Instance, b: Instance): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
