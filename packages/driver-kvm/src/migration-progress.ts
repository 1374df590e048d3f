import type { LiveMigrationProgress } from '@nova-lfs/core/ports';

/** A job-statistics field as `@nova-lfs/libvirt`'s `JobStats.fields` holds it. */
type Field = number | bigint | boolean | string | undefined;

function num(v: Field): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * Maps libvirt's job statistics of a running migration (`virDomainGetJobStats` fields:
 * `data_total`, `data_processed`, `data_remaining`, `memory_dirty_rate` in pages/s times
 * `memory_page_size`, `downtime` = the expected downtime while it runs) to the port's progress.
 * `elapsedMs` is libvirt's `time_elapsed` when present, else `fallbackElapsedMs`.
 */
export function progressFromJobStats(
  fields: Readonly<Record<string, Field>>,
  phase: LiveMigrationProgress['phase'],
  fallbackElapsedMs: number,
): LiveMigrationProgress {
  const pageSize = num(fields.memory_page_size) ?? 4096;
  const dirtyPages = num(fields.memory_dirty_rate);
  const p: {
    -readonly [K in keyof LiveMigrationProgress]: LiveMigrationProgress[K];
  } = { phase, elapsedMs: num(fields.time_elapsed) ?? fallbackElapsedMs };
  const total = num(fields.data_total);
  const processed = num(fields.data_processed);
  const remaining = num(fields.data_remaining);
  const downtime = num(fields.downtime);
  if (total !== undefined) p.dataTotalBytes = total;
  if (processed !== undefined) p.dataProcessedBytes = processed;
  if (remaining !== undefined) p.dataRemainingBytes = remaining;
  if (dirtyPages !== undefined) p.dirtyRateBytesPerSecond = dirtyPages * pageSize;
  if (downtime !== undefined) p.downtimeMs = downtime;
  return p;
}

/**
 * The measured downtime of a completed migration from libvirt's completed-job statistics
 * (`virDomainGetJobStats` with `VIR_DOMAIN_JOB_STATS_COMPLETED`: `downtime`, ms), or undefined.
 */
export function downtimeFromCompletedStats(fields: Readonly<Record<string, Field>>): number | undefined {
  return num(fields.downtime);
}
