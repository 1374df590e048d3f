/**
 * The verdict of a filter on one host (the Kubernetes scheduler framework's `Status`): success, or
 * unschedulable with the reasons. Statuses are immutable and meant to be pre-built once per reason,
 * so that filtering allocates nothing.
 */
export interface FilterStatus {
  readonly ok: boolean;
  /** Why the host was rejected (empty on success). */
  readonly reasons: readonly string[];
}

/** The success status (shared). */
export const Success: FilterStatus = Object.freeze({
  ok: true,
  reasons: Object.freeze([]) as readonly string[],
});

/** Builds a frozen rejection status; build these once (module level), not per call. */
export function unschedulable(...reasons: string[]): FilterStatus {
  return Object.freeze({ ok: false, reasons: Object.freeze(reasons) });
}
