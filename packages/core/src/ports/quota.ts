import type { QuotaDeltas, QuotaLimits } from '../model/quota.js';

/** A held, not yet committed, quota reservation. */
export interface QuotaReservation {
  readonly id: string;
  readonly projectId: string;
  readonly deltas: QuotaDeltas;
}

/** Usage of one project. */
export interface QuotaUsage {
  readonly projectId: string;
  readonly limits: QuotaLimits;
  /** Committed usage (existing instances). */
  readonly inUse: QuotaDeltas;
  /** In-flight reservations. */
  readonly reserved: QuotaDeltas;
}

/**
 * Per-project quota: counted usage plus in-flight reservations. `reserve` is atomic, so N
 * concurrent requests against a limit admit exactly as many as fit.
 */
export interface QuotaEngine {
  /** @throws QuotaExceededError naming the resource, limit, usage and request. Nothing is held then. */
  reserve(projectId: string, deltas: QuotaDeltas): Promise<QuotaReservation>;
  /** Turns a reservation into usage. Idempotent per reservation. */
  commit(reservation: QuotaReservation): Promise<void>;
  /** Drops a reservation. Idempotent per reservation. */
  rollback(reservation: QuotaReservation): Promise<void>;
  /** Returns usage (an instance was deleted). */
  release(projectId: string, deltas: QuotaDeltas): Promise<void>;
  usage(projectId: string): Promise<QuotaUsage>;
  setLimits(projectId: string, limits: Partial<QuotaLimits>): Promise<void>;
  /**
   * Drops reservations abandoned by a crashed process (older than the engine's stale-reservation
   * time); the periodic reconciler calls it while the engine runs. Returns how many it dropped.
   * Engines that keep reservations only in their own memory need not implement it.
   */
  expireStale?(): Promise<number>;
  /** Replaces counted usage with `usage` and drops reservations (reconciliation after a restart). */
  resync(usage: ReadonlyMap<string, QuotaDeltas>): Promise<void>;
}
