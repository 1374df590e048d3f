import { z } from 'zod';
import { idSchema, uuidSchema } from './names.js';

/** Kinds of move (Nova's `migration_type`; `evacuation` is an evacuate's). */
export const migrationKinds = ['live', 'cold', 'resize', 'evacuation'] as const;
/** A kind of move. */
export type MigrationKind = (typeof migrationKinds)[number];

/**
 * Statuses of a migration record, as Nova's migrations API shows them: a resize or cold migration
 * goes `pre-migrating`, `migrating`, `post-migrating`, `finished` (waiting for its confirm), then
 * `confirming`/`confirmed` or `reverting`/`reverted`; a live migration `preparing`, `running`,
 * `completed`, or `cancelled` after an abort; an evacuation `pre-migrating`, then `done`; any of
 * them `error` or `failed`.
 */
export const migrationStatuses = [
  'accepted',
  'pre-migrating',
  'migrating',
  'post-migrating',
  'finished',
  'confirming',
  'confirmed',
  'reverting',
  'reverted',
  'preparing',
  'running',
  'completed',
  'cancelled',
  'done',
  'error',
  'failed',
] as const;
/** A migration status. */
export type MigrationStatus = (typeof migrationStatuses)[number];

/** Progress of a live migration as last reported by its driver (bytes and ms). */
export const migrationProgressSchema = z.object({
  phase: z.enum(['precopy', 'postcopy']),
  elapsedMs: z.number(),
  dataTotalBytes: z.number().optional(),
  dataProcessedBytes: z.number().optional(),
  dataRemainingBytes: z.number().optional(),
  dirtyRateBytesPerSecond: z.number().optional(),
  downtimeMs: z.number().optional(),
});
/** Progress of a live migration. */
export type MigrationProgress = z.output<typeof migrationProgressSchema>;

/** One move of one instance (Nova's migration record). Timestamps are epoch milliseconds. */
export const migrationRecordSchema = z.object({
  id: z.string().min(1),
  instanceId: uuidSchema,
  projectId: idSchema,
  kind: z.enum(migrationKinds),
  status: z.enum(migrationStatuses),
  sourceHostId: idSchema,
  /** `null` until the scheduler chose it. */
  destHostId: idSchema.nullable(),
  oldFlavorId: z.string(),
  newFlavorId: z.string(),
  progress: migrationProgressSchema.nullable(),
  /** Why it failed or was cancelled. */
  error: z.string().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
/** One move of one instance. */
export type MigrationRecord = z.output<typeof migrationRecordSchema>;

/** Filter of a migration list. */
export interface MigrationFilter {
  readonly instanceId?: string;
  readonly status?: MigrationStatus | readonly MigrationStatus[];
  readonly kind?: MigrationKind;
}
