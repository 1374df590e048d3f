import { newId } from '../model/ids.js';
import type { Instance } from '../model/instance.js';
import type { MigrationKind, MigrationRecord } from '../model/migration.js';
import type { EngineContext } from './engine-context.js';

/** What a migration record's update may change. */
export type MigrationChange = Partial<Pick<MigrationRecord, 'status' | 'destHostId' | 'progress' | 'error'>>;

/**
 * Migration records of the moves (Nova's migrations): each change is stored and published as an
 * `instance.migration` event (the live migration flow throttles its progress updates).
 */
export class MigrationLog {
  constructor(private readonly ctx: EngineContext) {}

  /** Records a new move of `instance` (status `accepted` unless told). */
  async begin(
    instance: Instance,
    kind: MigrationKind,
    fields: { destHostId: string | null; newFlavorId: string; status?: MigrationRecord['status'] },
  ): Promise<MigrationRecord> {
    const at = this.ctx.now();
    const record: MigrationRecord = {
      id: newId(),
      instanceId: instance.id,
      projectId: instance.projectId,
      kind,
      status: fields.status ?? 'accepted',
      sourceHostId: instance.hostId ?? '',
      destHostId: fields.destHostId,
      oldFlavorId: instance.flavor.id,
      newFlavorId: fields.newFlavorId,
      progress: null,
      error: null,
      createdAt: at,
      updatedAt: at,
    };
    await this.store(record);
    return record;
  }

  /** Stores the changed record and publishes it; resolves the new record. Never throws. */
  async update(record: MigrationRecord, change: MigrationChange): Promise<MigrationRecord> {
    const next: MigrationRecord = { ...record, ...change, updatedAt: this.ctx.now() };
    await this.store(next).catch(() => undefined);
    return next;
  }

  private async store(record: MigrationRecord): Promise<void> {
    await this.ctx.deps.migrations.put(record);
    await this.ctx.recordQuietly({
      type: 'instance.migration',
      instanceId: record.instanceId,
      at: record.updatedAt,
      migration: record,
    });
  }
}
