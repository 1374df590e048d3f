import type { MigrationFilter, MigrationRecord } from '../model/migration.js';
import type { MigrationStore } from '../ports/stores.js';

/** Whether `record` passes `filter` (shared by the stores that filter in memory). */
export function migrationMatches(record: MigrationRecord, filter: MigrationFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.instanceId !== undefined && record.instanceId !== filter.instanceId) return false;
  if (filter.kind !== undefined && record.kind !== filter.kind) return false;
  if (filter.status !== undefined) {
    const wanted = typeof filter.status === 'string' ? [filter.status] : filter.status;
    if (!wanted.includes(record.status)) return false;
  }
  return true;
}

/** In-memory {@link MigrationStore}. */
export class MemoryMigrationStore implements MigrationStore {
  private readonly records = new Map<string, MigrationRecord>();

  async put(record: MigrationRecord): Promise<void> {
    this.records.set(record.id, record);
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    return this.records.get(id);
  }

  async list(filter?: MigrationFilter): Promise<MigrationRecord[]> {
    return [...this.records.values()]
      .filter((r) => migrationMatches(r, filter))
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
}
