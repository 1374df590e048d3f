import { randomUUID } from 'node:crypto';
import {
  defaultQuotaLimits,
  parseInput,
  type QuotaDeltas,
  type QuotaEngine,
  QuotaExceededError,
  type QuotaLimits,
  type QuotaReservation,
  type QuotaUsage,
  quotaLimitsSchema,
  quotaResources,
} from '@nova-lfs/core';
import { sql } from 'kysely';
import { type SqlDatabase, writeTransaction } from './database.js';

const zero = (): { instances: number; cores: number; ramMb: number } => ({
  instances: 0,
  cores: 0,
  ramMb: 0,
});

/**
 * {@link QuotaEngine} on SQL: usage rows and reservation rows in the database, checked and held in
 * one write transaction that locks the project's usage row, so several processes sharing one
 * database never over-admit. `resync` recounts usage from the instances table (every process's)
 * and drops reservations older than `staleReservationMs` (left by crashed processes).
 */
export class SqlQuotaEngine implements QuotaEngine {
  constructor(
    private readonly database: SqlDatabase,
    private defaults: QuotaLimits = defaultQuotaLimits,
    private readonly staleReservationMs = 30_000,
  ) {}

  async reserve(projectId: string, deltas: QuotaDeltas): Promise<QuotaReservation> {
    return writeTransaction(this.database, async (trx) => {
      await trx
        .insertInto('quota_usage')
        .values({ project_id: projectId, instances: 0, cores: 0, ram_mb: 0 })
        .onConflict((oc) => oc.column('project_id').doNothing())
        .execute();
      let q = trx.selectFrom('quota_usage').selectAll().where('project_id', '=', projectId);
      if (this.database.dialect === 'postgres') q = q.forUpdate();
      const u = await q.executeTakeFirstOrThrow();
      const r = await trx
        .selectFrom('quota_reservations')
        .select([
          sql<number>`coalesce(sum(instances), 0)`.as('instances'),
          sql<number>`coalesce(sum(cores), 0)`.as('cores'),
          sql<number>`coalesce(sum(ram_mb), 0)`.as('ram_mb'),
        ])
        .where('project_id', '=', projectId)
        .executeTakeFirstOrThrow();
      const limits = await this.limitsIn(trx, projectId);
      const used = { instances: Number(u.instances), cores: Number(u.cores), ramMb: Number(u.ram_mb) };
      const reserved = { instances: Number(r.instances), cores: Number(r.cores), ramMb: Number(r.ram_mb) };
      for (const res of quotaResources) {
        const limit = limits[res];
        if (limit < 0 || deltas[res] <= 0) continue;
        if (used[res] + reserved[res] + deltas[res] > limit) {
          throw new QuotaExceededError({
            projectId,
            resource: res,
            limit,
            inUse: used[res],
            reserved: reserved[res],
            requested: deltas[res],
          });
        }
      }
      const reservation: QuotaReservation = { id: randomUUID(), projectId, deltas };
      await trx
        .insertInto('quota_reservations')
        .values({
          id: reservation.id,
          project_id: projectId,
          instances: deltas.instances,
          cores: deltas.cores,
          ram_mb: deltas.ramMb,
          created_at: Date.now(),
        })
        .execute();
      return reservation;
    });
  }

  async commit(reservation: QuotaReservation): Promise<void> {
    await writeTransaction(this.database, async (trx) => {
      const gone = await trx
        .deleteFrom('quota_reservations')
        .where('id', '=', reservation.id)
        .executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) return;
      const d = reservation.deltas;
      await trx
        .updateTable('quota_usage')
        .set((eb) => ({
          instances: eb('instances', '+', d.instances),
          cores: eb('cores', '+', d.cores),
          ram_mb: eb('ram_mb', '+', d.ramMb),
        }))
        .where('project_id', '=', reservation.projectId)
        .execute();
    });
  }

  async rollback(reservation: QuotaReservation): Promise<void> {
    await this.database.db.deleteFrom('quota_reservations').where('id', '=', reservation.id).execute();
  }

  async release(projectId: string, deltas: QuotaDeltas): Promise<void> {
    const floor = sql.raw(this.database.dialect === 'postgres' ? 'greatest' : 'max');
    await this.database.db
      .updateTable('quota_usage')
      .set({
        instances: sql<number>`${floor}(0, instances - ${deltas.instances})`,
        cores: sql<number>`${floor}(0, cores - ${deltas.cores})`,
        ram_mb: sql<number>`${floor}(0, ram_mb - ${deltas.ramMb})`,
      })
      .where('project_id', '=', projectId)
      .execute();
  }

  async usage(projectId: string): Promise<QuotaUsage> {
    const u = await this.database.db
      .selectFrom('quota_usage')
      .selectAll()
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    const rs = await this.database.db
      .selectFrom('quota_reservations')
      .selectAll()
      .where('project_id', '=', projectId)
      .execute();
    const reserved = zero();
    for (const r of rs) {
      reserved.instances += Number(r.instances);
      reserved.cores += Number(r.cores);
      reserved.ramMb += Number(r.ram_mb);
    }
    return {
      projectId,
      limits: await this.limitsIn(this.database.db, projectId),
      inUse: u ? { instances: Number(u.instances), cores: Number(u.cores), ramMb: Number(u.ram_mb) } : zero(),
      reserved,
    };
  }

  /** @throws ValidationError naming the field. */
  async setLimits(projectId: string, limits: Partial<QuotaLimits>): Promise<void> {
    const valid = parseInput(quotaLimitsSchema.partial(), limits);
    const current = await this.limitsIn(this.database.db, projectId);
    const data = JSON.stringify({ ...current, ...valid });
    await this.database.db
      .insertInto('quota_limits')
      .values({ project_id: projectId, data })
      .onConflict((oc) => oc.column('project_id').doUpdateSet({ data }))
      .execute();
  }

  /** Changes the default limits of projects without their own. */
  setDefaults(limits: QuotaLimits): void {
    this.defaults = limits;
  }

  /**
   * Recounts usage from the instances table (the argument is ignored: the database is the
   * authority shared by every process) and drops reservations older than `staleReservationMs`.
   */
  async resync(): Promise<void> {
    await writeTransaction(this.database, async (trx) => {
      if (this.database.dialect === 'postgres')
        await sql`lock table quota_usage in exclusive mode`.execute(trx);
      const rows = await trx.selectFrom('instances').select(['project_id', 'data']).execute();
      const usage = new Map<string, { instances: number; cores: number; ramMb: number }>();
      for (const r of rows) {
        const flavor = (JSON.parse(r.data) as { flavor: { vcpus: number; ramMb: number } }).flavor;
        const u = usage.get(r.project_id) ?? zero();
        u.instances += 1;
        u.cores += flavor.vcpus;
        u.ramMb += flavor.ramMb;
        usage.set(r.project_id, u);
      }
      await trx.deleteFrom('quota_usage').execute();
      for (const [project, u] of usage) {
        await trx
          .insertInto('quota_usage')
          .values({ project_id: project, instances: u.instances, cores: u.cores, ram_mb: u.ramMb })
          .execute();
      }
      await trx
        .deleteFrom('quota_reservations')
        .where('created_at', '<', Date.now() - this.staleReservationMs)
        .execute();
    });
  }

  private async limitsIn(db: Pick<SqlDatabase['db'], 'selectFrom'>, projectId: string): Promise<QuotaLimits> {
    const row = await db
      .selectFrom('quota_limits')
      .select('data')
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    return row ? { ...this.defaults, ...(JSON.parse(row.data) as Partial<QuotaLimits>) } : this.defaults;
  }
}
