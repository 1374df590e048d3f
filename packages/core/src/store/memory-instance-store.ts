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

  async list(filter: InstanceFilter = {}): Promise<Instance[]> {
    const out: Instance[] = [];
    for (const i of this.records.values()) {
      if (filter.projectId !== undefined && i.projectId !== filter.projectId) continue;
      if (filter.hostId !== undefined && i.hostId !== filter.hostId) continue;
      if (filter.withTask && i.taskState === null) continue;
      out.push(i);
    }
    return out;
  }

  /** Number of records (for tests and benchmarks). */
  get size(): number {
    return this.records.size;
  }
}
