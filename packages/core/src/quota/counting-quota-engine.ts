import { z } from 'zod';
import { QuotaExceededError } from '../errors.js';
import { idSchema } from '../model/names.js';
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

const projectIdArgument = z.object({ projectId: idSchema });

/** @throws ValidationError naming `projectId` when it is not an id (NUL and control characters included). */
function checkProjectId(projectId: string): void {
  parseInput(projectIdArgument, { projectId });
}

const isZero = (d: QuotaDeltas): boolean => d.instances === 0 && d.cores === 0 && d.ramMb === 0;

/**
 * In-process {@link QuotaEngine}: usage counters plus in-flight reservations per project.
 * `reserve` checks and holds in one synchronous step, so concurrent callers in this process can
 * never over-admit. After a restart the engine's reconciliation calls `resync` with counted usage.
 *
 * Memory is bounded by the projects that use something or have limits of their own: reading the
 * usage of an unknown project answers from the defaults without remembering it, and a project
 * whose usage and reservations return to zero is forgotten (its own limits keep it).
 */
export class CountingQuotaEngine implements QuotaEngine {
  private readonly projects = new Map<string, ProjectCounters>();
  private readonly held = new Map<string, QuotaReservation>();
  private nextId = 0;

  private defaults: QuotaLimits;

  /**
   * @param defaults limits of projects without their own (every field required; `-1` unlimited).
   * @throws ValidationError naming each field that is missing, unknown or not an integer >= -1.
   */
  constructor(defaults: QuotaLimits = defaultQuotaLimits) {
    this.defaults = parseInput(quotaLimitsSchema, defaults);
  }

  /** Number of projects whose counters or limits are held in memory (observability and tests). */
  get trackedProjects(): number {
    return this.projects.size;
  }

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
    this.checkFits(projectId, c, deltas);
    for (const r of quotaResources) c.reserved[r] += deltas[r];
    const reservation: QuotaReservation = { id: `qr-${++this.nextId}`, projectId, deltas };
    this.held.set(reservation.id, reservation);
    return reservation;
  }

  /**
   * Throws the QuotaExceededError `deltas` would meet now (nothing changes). With
   * {@link CountingQuotaEngine.consumeNow}, how a memory unit of work applies `quota.consume`:
   * it checks every write first, then applies them in one synchronous step.
   */
  checkConsume(projectId: string, deltas: QuotaDeltas): void {
    const c = this.projects.get(projectId) ?? { limits: undefined, used: zero(), reserved: zero() };
    this.checkFits(projectId, c, deltas);
  }

  /** Adds `deltas` to the project's usage, unchecked (after {@link CountingQuotaEngine.checkConsume}). */
  consumeNow(projectId: string, deltas: QuotaDeltas): void {
    const c = this.counters(projectId);
    for (const r of quotaResources) c.used[r] += deltas[r];
  }

  /** Takes `deltas` off the project's usage (never below zero): a unit's `quota.release`. */
  releaseNow(projectId: string, deltas: QuotaDeltas): void {
    const c = this.projects.get(projectId);
    if (!c) return;
    for (const r of quotaResources) c.used[r] = Math.max(0, c.used[r] - deltas[r]);
    this.forgetIfIdle(projectId, c);
  }

  private checkFits(projectId: string, c: ProjectCounters, deltas: QuotaDeltas): void {
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
    this.forgetIfIdle(reservation.projectId, c);
  }

  async release(projectId: string, deltas: QuotaDeltas): Promise<void> {
    this.releaseNow(projectId, deltas);
  }

  /**
   * Usage of a project; an unknown one gets the defaults and zero usage, and is not remembered.
   * @throws ValidationError naming `projectId` when it is not an id.
   */
  async usage(projectId: string): Promise<QuotaUsage> {
    const c = this.projects.get(projectId);
    if (!c) checkProjectId(projectId);
    return {
      projectId,
      limits: c?.limits ?? this.defaults,
      inUse: c ? { ...c.used } : zero(),
      reserved: c ? { ...c.reserved } : zero(),
    };
  }

  /**
   * Sets some of a project's limits (the others keep their current value).
   * @throws ValidationError naming `projectId` when it is not an id, and each limit that is
   *   unknown or not an integer >= -1; nothing changes then.
   */
  async setLimits(projectId: string, limits: Partial<QuotaLimits>): Promise<void> {
    checkProjectId(projectId);
    const valid = parseInput(quotaLimitsSchema.partial(), limits);
    const c = this.counters(projectId);
    c.limits = { ...(c.limits ?? this.defaults), ...valid };
  }

  /**
   * Changes the default limits of projects without their own.
   * @throws ValidationError naming each field that is missing, unknown or not an integer >= -1;
   *   the defaults are unchanged then.
   */
  setDefaults(limits: QuotaLimits): void {
    this.defaults = parseInput(quotaLimitsSchema, limits);
  }

  /** Drops a project's counters once it uses and holds nothing and has no limits of its own. */
  private forgetIfIdle(projectId: string, c: ProjectCounters): void {
    if (c.limits === undefined && isZero(c.used) && isZero(c.reserved)) this.projects.delete(projectId);
  }

  async resync(usage: ReadonlyMap<string, QuotaDeltas>): Promise<void> {
    this.held.clear();
    for (const [projectId, c] of this.projects) {
      c.used = zero();
      c.reserved = zero();
      this.forgetIfIdle(projectId, c);
    }
    for (const [projectId, d] of usage) {
      this.counters(projectId).used = { instances: d.instances, cores: d.cores, ramMb: d.ramMb };
    }
  }
}
