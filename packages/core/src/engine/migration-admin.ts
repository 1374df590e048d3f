import { z } from 'zod';
import { NotFoundError } from '../errors.js';
import { type MigrationRecord, migrationKinds, migrationStatuses } from '../model/migration.js';
import { uuidSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import type { MigrationStore } from '../ports/stores.js';

const migrationFilterSchema = z.strictObject({
  instanceId: uuidSchema.optional(),
  status: z.union([z.enum(migrationStatuses), z.array(z.enum(migrationStatuses)).max(20)]).optional(),
  kind: z.enum(migrationKinds).optional(),
});

/** Filter of {@link MigrationAdmin.list}. */
export type MigrationListFilter = z.input<typeof migrationFilterSchema>;

/** The migration records of the moves (Nova's `os-migrations` and `servers/{id}/migrations`). */
export class MigrationAdmin {
  constructor(private readonly store: MigrationStore) {}

  /** @throws NotFoundError */
  async get(id: string): Promise<MigrationRecord> {
    const found = await this.store.get(id);
    if (!found) throw new NotFoundError('migration', id, 'id');
    return found;
  }

  /**
   * Records oldest first, filtered by instance, status (one or several) and kind.
   * @throws ValidationError naming the field
   */
  async list(filter: MigrationListFilter = {}): Promise<MigrationRecord[]> {
    return this.store.list(parseInput(migrationFilterSchema, filter));
  }
}
