import { QuotaExceededError } from '../errors.js';
import {
  defaultQuotaLimits,
  type QuotaDeltas,
  type QuotaLimits,
  quotaLimitsSchema,
  quotaResources,
} from '../model/quota.js';
import { parseInput } from '../model/validation.js';
import type { QuotaEngine, QuotaReservation, QuotaUsage } from '../ports/quota.js';

interface ProjectCounters {
  limits: QuotaLimits | undefined;
  used: { instances: number; cores: number; ramMb: number };
  reserved: { instances: number; cores: number; ramMb: number };
}

const zero = (): { instances: number; cores: number; ramMb: number } => ({
  instances: 0,
  cores: 0,
  ramMb: 0,
});

/**
 * In-process {@link QuotaEngine}: usage counters plus in-flight reservations per project.
 * `reserve` checks and holds in one synchronous step, so concurrent callers in this process can
 * never over-admit. After a restart the engine's reconciliation calls `resync` with counted usage.
 */
export class CountingQuotaEngine implements QuotaEngine {
  private readonly projects = new Map<string, ProjectCounters>();
  private readonly held = new Map<string, QuotaReservation>();
  private nextId = 0;

  /** @param defaults limits of projects without their own. */
  constructor(private defaults: QuotaLimits = defaultQuotaLimits) {}

  private counters(projectId: string): ProjectCounters {
    let c = this.projects.get(projectId);
    if (!c) {
      c = { limits: undefined, used: zero(), reserved: zero() };
      this.projects.set(projectId, c);
    }
    return c;
  }

  async reserve(projectId: string, deltas: QuotaDeltas): Promise<QuotaReservation> {
    const c = this.counters(projectId);
    const limits = c.limits ?? this.defaults;
    for (const r of quotaResources) {
      const limit = limits[r];
      if (limit < 0 || deltas[r] <= 0) continue;
      if (c.used[r] + c.reserved[r] + deltas[r] > limit) {
        throw new QuotaExceededError({
          projectId,
          resource: r,
          limit,
          inUse: c.used[r],
          reserved: c.reserved[r],
          requested: deltas[r],
        });
      }
    }
    for (const r of quotaResources) c.reserved[r] += deltas[r];
    const reservation: QuotaReservation = { id: `qr-${++this.nextId}`, projectId, deltas };
    this.held.set(reservation.id, reservation);
    return reservation;
  }

  async commit(reservation: QuotaReservation): Promise<void> {
    if (!this.held.delete(reservation.id)) return;
    const c = this.counters(reservation.projectId);
    for (const r of quotaResources) {
      c.reserved[r] -= reservation.deltas[r];
      c.used[r] += reservation.deltas[r];
    }
  }

  async rollback(reservation: QuotaReservation): Promise<void> {
    if (!this.held.delete(reservation.id)) return;
    const c = this.counters(reservation.projectId);
    for (const r of quotaResources) c.reserved[r] -= reservation.deltas[r];
  }

  async release(projectId: string, deltas: QuotaDeltas): Promise<void> {
    const c = this.counters(projectId);
    for (const r of quotaResources) c.used[r] = Math.max(0, c.used[r] - deltas[r]);
  }

  async usage(projectId: string): Promise<QuotaUsage> {
    const c = this.counters(projectId);
    return {
      projectId,
      limits: c.limits ?? this.defaults,
      inUse: { ...c.used },
      reserved: { ...c.reserved },
    };
  }

  /** @throws ValidationError naming the field when a limit is not an integer ≥ -1. */
  async setLimits(projectId: string, limits: Partial<QuotaLimits>): Promise<void> {
    const valid = parseInput(quotaLimitsSchema.partial(), limits);
    const c = this.counters(projectId);
    c.limits = { ...(c.limits ?? this.defaults), ...valid };
  }

  /** Changes the default limits of projects without their own. */
  setDefaults(limits: QuotaLimits): void {
    this.defaults = limits;
  }

  async resync(usage: ReadonlyMap<string, QuotaDeltas>): Promise<void> {
    this.held.clear();
    for (const c of this.projects.values()) {
      c.used = zero();
      c.reserved = zero();
    }
    for (const [projectId, d] of usage) {
      this.counters(projectId).used = { instances: d.instances, cores: d.cores, ramMb: d.ramMb };
    }
  }
}
