import {
  defaultQuotaLimits,
  newId,
  parseInput,
  type QuotaDeltas,
  type QuotaEngine,
  QuotaExceededError,
  type QuotaLimits,
  type QuotaReservation,
  type QuotaUsage,
  quotaLimitsSchema,
  quotaResources,
  ValidationError,
} from '@nova-lfs/core';
import { type RawBuilder, sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import { ContentionError } from './errors.js';
import { ExclusiveReadCache } from './exclusive-read-cache.js';
import { PreconditionState } from './postgres-unit-statements.js';
import { type BoundStatement, PreparedStatement } from './statement.js';

const zero = (): { instances: number; cores: number; ramMb: number } => ({
  instances: 0,
  cores: 0,
  ramMb: 0,
});

/** A project's row in `quota_usage`. */
export interface UsageRow {
  instances: number | string;
  cores: number | string;
  ram_mb: number | string;
  reserved_instances: number | string;
  reserved_cores: number | string;
  reserved_ram_mb: number | string;
}

/**
 * A request's deltas and limits. On SQLite the limits are the project's; on PostgreSQL the
 * statement reads the project's own limits from `quota_limits` itself and these are the defaults
 * (one statement instead of a read and a write).
 */
type AdmitParams = {
  projectId: string;
  di: number;
  dc: number;
  dr: number;
  li: number;
  lc: number;
  lr: number;
};

type Amounts = { projectId: string; ui: number; uc: number; ur: number; ri: number; rc: number; rr: number };

function admitParams(projectId: string, d: QuotaDeltas, limits: QuotaLimits): AdmitParams {
  return {
    projectId,
    di: d.instances,
    dc: d.cores,
    dr: d.ramMb,
    li: limits.instances,
    lc: limits.cores,
    lr: limits.ramMb,
  };
}

/** Amounts that settle a reservation: out of the reserved sums, and into usage when committed. */
function settling(projectId: string, d: QuotaDeltas, commit: boolean): Amounts {
  const k = commit ? 1 : 0;
  return {
    projectId,
    ui: d.instances * k,
    uc: d.cores * k,
    ur: d.ramMb * k,
    ri: d.instances,
    rc: d.cores,
    rr: d.ramMb,
  };
}

/**
 * {@link QuotaEngine} on SQL, safe for several processes sharing one database. The project's row
 * holds its usage and the sum of its in-flight reservations; admission is one conditional
 * update of that row (it adds the request to the reserved sums only if every limit still holds)
 * together with the reservation's own row, atomically: one statement on PostgreSQL, so the row
 * lock lasts one statement; one unit of work on SQLite. A refused request reads the row to say
 * which limit it hit. `resync` recounts usage from the instances table (every process's) and
 * drops reservations older than `staleReservationMs` (left by crashed processes).
 *
 * With `staleReservationMs` 0 the engine is the database's sole owner (the embedded default):
 * every reservation in the database at start-up belongs to a dead process, so reservations need
 * no rows of their own. They are then kept in memory, their sums in the usage row, and admission
 * and settling are one statement each; `resync` zeroes the sums a crash left behind.
 */
export class SqlQuotaEngine implements QuotaEngine {
  private readonly limitsStmt;
  private readonly usageStmt;
  private readonly ensureRow;
  private readonly admit;
  private readonly pgAdmit;
  private readonly insertReservation;
  private readonly takeReservation;
  private readonly settle;
  private readonly pgSettle;
  private readonly releaseStmt;
  private readonly consumeStmt;
  private readonly consumeFirstStmt;
  private readonly soleOwner: boolean;
  /** Reservations held by this engine when it is the database's sole owner. */
  private readonly held = new Map<string, QuotaReservation>();
  /** Projects' own limits (an empty object: none, the defaults apply). */
  private readonly ownLimits: ExclusiveReadCache<Partial<QuotaLimits>>;

  private defaults: QuotaLimits;
  private readonly expireStmt;

  /**
   * @param defaults limits of projects without their own (default Nova's)
   * @param staleReservationMs age after which another process's reservation counts as abandoned
   *   (0: this engine is the database's sole owner; reservations then live in its memory)
   * @throws ValidationError naming the field of `defaults` that is not a whole number >= -1, or
   *   `staleReservationMs` when it is not a whole number >= 0
   */
  constructor(
    private readonly database: SqlDatabase,
    defaults: QuotaLimits = defaultQuotaLimits,
    private readonly staleReservationMs = 30_000,
  ) {
    this.defaults = parseInput(quotaLimitsSchema, defaults);
    if (!Number.isSafeInteger(staleReservationMs) || staleReservationMs < 0) {
      throw new ValidationError([
        { path: 'staleReservationMs', rule: 'min', message: 'must be a whole number of milliseconds >= 0' },
      ]);
    }
    const { db } = database;
    this.limitsStmt = PreparedStatement.of<{ projectId: string }>((p) =>
      db.selectFrom('quota_limits').select('data').where('project_id', '=', p('projectId')),
    );
    this.usageStmt = PreparedStatement.of<{ projectId: string }>((p) =>
      db
        .selectFrom('quota_usage')
        .select(['instances', 'cores', 'ram_mb', 'reserved_instances', 'reserved_cores', 'reserved_ram_mb'])
        .where('project_id', '=', p('projectId')),
    );
    this.ensureRow = PreparedStatement.of<{ projectId: string }>((p) =>
      db
        .insertInto('quota_usage')
        .values({
          project_id: p('projectId'),
          instances: 0,
          cores: 0,
          ram_mb: 0,
          reserved_instances: 0,
          reserved_cores: 0,
          reserved_ram_mb: 0,
        })
        .onConflict((oc) => oc.column('project_id').doNothing()),
    );
    const fits = (used: string, reserved: string, delta: number, limit: RawBuilder<unknown>) =>
      sql`(${limit} < 0 or cast(${delta} as bigint) <= 0 or ${sql.ref(used)} + ${sql.ref(reserved)} + cast(${delta} as bigint) <= ${limit})`;
    const admitIf = (p: <K extends keyof AdmitParams>(k: K) => AdmitParams[K]): RawBuilder<unknown> => {
      // PostgreSQL: the project's own limit if it has one, else the default given
      const limit = (key: keyof QuotaLimits, given: number) =>
        database.dialect === 'postgres'
          ? sql`coalesce((select cast(cast(l.data as jsonb) ->> ${sql.lit(key)} as bigint) from quota_limits l where l.project_id = ${p('projectId')}), cast(${given} as bigint))`
          : sql`cast(${given} as bigint)`;
      return sql`update quota_usage set
            reserved_instances = reserved_instances + cast(${p('di')} as bigint),
            reserved_cores = reserved_cores + cast(${p('dc')} as bigint),
            reserved_ram_mb = reserved_ram_mb + cast(${p('dr')} as bigint)
          where project_id = ${p('projectId')}
            and ${fits('instances', 'reserved_instances', p('di'), limit('instances', p('li')))}
            and ${fits('cores', 'reserved_cores', p('dc'), limit('cores', p('lc')))}
            and ${fits('ram_mb', 'reserved_ram_mb', p('dr'), limit('ramMb', p('lr')))}`;
    };
    this.admit = PreparedStatement.of<AdmitParams>((p) => ({ compile: () => admitIf(p).compile(db) }));
    // consumption in a unit of work, into usage directly. SQLite: a conditional update (the row
    // exists but on first use: then `consumeFirstStmt`); PostgreSQL: an upsert checked in SQL,
    // raising when refused, so that the unit's transaction aborts
    const consumeIf = (p: <K extends keyof AdmitParams>(k: K) => AdmitParams[K], table: string) => {
      const limit = (key: keyof QuotaLimits, given: number) =>
        database.dialect === 'postgres'
          ? sql`coalesce((select cast(cast(l.data as jsonb) ->> ${sql.lit(key)} as bigint) from quota_limits l where l.project_id = ${p('projectId')}), cast(${given} as bigint))`
          : sql`cast(${given} as bigint)`;
      const col = (c: string) => `${table}.${c}`;
      return {
        set: sql`instances = ${sql.ref(col('instances'))} + cast(${p('di')} as bigint),
            cores = ${sql.ref(col('cores'))} + cast(${p('dc')} as bigint),
            ram_mb = ${sql.ref(col('ram_mb'))} + cast(${p('dr')} as bigint)`,
        fits: sql`${fits(col('instances'), col('reserved_instances'), p('di'), limit('instances', p('li')))}
            and ${fits(col('cores'), col('reserved_cores'), p('dc'), limit('cores', p('lc')))}
            and ${fits(col('ram_mb'), col('reserved_ram_mb'), p('dr'), limit('ramMb', p('lr')))}`,
        fitsAlone: sql`${fitsAlone(p('di'), limit('instances', p('li')))}
            and ${fitsAlone(p('dc'), limit('cores', p('lc')))}
            and ${fitsAlone(p('dr'), limit('ramMb', p('lr')))}`,
      };
    };
    const fitsAlone = (delta: number, l: RawBuilder<unknown>) =>
      sql`(${l} < 0 or cast(${delta} as bigint) <= ${l})`;
    const firstUse = (p: <K extends keyof AdmitParams>(k: K) => AdmitParams[K]) =>
      sql`insert into quota_usage
            (project_id, instances, cores, ram_mb, reserved_instances, reserved_cores, reserved_ram_mb)
          select ${p('projectId')}, ${p('di')}, ${p('dc')}, ${p('dr')}, 0, 0, 0
          where ${consumeIf(p, 'quota_usage').fitsAlone}`;
    this.consumeStmt = PreparedStatement.of<AdmitParams>((p) => {
      const c = consumeIf(p, 'quota_usage');
      return {
        compile: () =>
          (database.dialect === 'postgres'
            ? sql`with consumed as (${firstUse(p)}
                  on conflict (project_id) do update set ${c.set} where ${c.fits}
                  returning 1)
                select nlfs_expect((select count(*) from consumed), ${PreconditionState.QuotaRefused}, 'quota', ${p('projectId')})`
            : sql`update quota_usage set ${c.set} where project_id = ${p('projectId')} and ${c.fits}`
          ).compile(db),
      };
    });
    this.consumeFirstStmt = PreparedStatement.of<AdmitParams>((p) => ({
      compile: () => firstUse(p).compile(db),
    }));
    this.pgAdmit = PreparedStatement.of<AdmitParams & { id: string; at: number }>((p) => ({
      compile: () =>
        sql`with u as (${admitIf(p)} returning project_id)
            insert into quota_reservations (id, project_id, instances, cores, ram_mb, created_at)
            select ${p('id')}, u.project_id, ${p('di')}, ${p('dc')}, ${p('dr')}, ${p('at')} from u
            returning id`.compile(db),
    }));
    this.insertReservation = PreparedStatement.of<{
      id: string;
      projectId: string;
      di: number;
      dc: number;
      dr: number;
      at: number;
    }>((p) =>
      db.insertInto('quota_reservations').values({
        id: p('id'),
        project_id: p('projectId'),
        instances: p('di'),
        cores: p('dc'),
        ram_mb: p('dr'),
        created_at: p('at'),
      }),
    );
    this.takeReservation = PreparedStatement.of<{ id: string }>((p) =>
      db
        .deleteFrom('quota_reservations')
        .where('id', '=', p('id'))
        .returning(['project_id', 'instances', 'cores', 'ram_mb']),
    );
    this.settle = PreparedStatement.of<Amounts>((p) => ({
      compile: () =>
        sql`update quota_usage set
              instances = instances + cast(${p('ui')} as bigint),
              cores = cores + cast(${p('uc')} as bigint),
              ram_mb = ram_mb + cast(${p('ur')} as bigint),
              reserved_instances = reserved_instances - cast(${p('ri')} as bigint),
              reserved_cores = reserved_cores - cast(${p('rc')} as bigint),
              reserved_ram_mb = reserved_ram_mb - cast(${p('rr')} as bigint)
            where project_id = ${p('projectId')}`.compile(db),
    }));
    // commit (into usage) or roll back a reservation, in one statement on PostgreSQL
    this.pgSettle = PreparedStatement.of<{ id: string; commit: number }>((p) => ({
      compile: () =>
        sql`with d as (delete from quota_reservations where id = ${p('id')}
                       returning project_id, instances, cores, ram_mb)
            update quota_usage q set
              instances = q.instances + d.instances * cast(${p('commit')} as bigint),
              cores = q.cores + d.cores * cast(${p('commit')} as bigint),
              ram_mb = q.ram_mb + d.ram_mb * cast(${p('commit')} as bigint),
              reserved_instances = q.reserved_instances - d.instances,
              reserved_cores = q.reserved_cores - d.cores,
              reserved_ram_mb = q.reserved_ram_mb - d.ram_mb
            from d where q.project_id = d.project_id`.compile(db),
    }));
    this.soleOwner = staleReservationMs === 0;
    this.ownLimits = new ExclusiveReadCache(database);
    const floor = sql.raw(database.dialect === 'postgres' ? 'greatest' : 'max');
    this.releaseStmt = PreparedStatement.of<{ projectId: string; di: number; dc: number; dr: number }>(
      (p) => ({
        compile: () =>
          sql`update quota_usage set
              instances = ${floor}(0, instances - cast(${p('di')} as bigint)),
              cores = ${floor}(0, cores - cast(${p('dc')} as bigint)),
              ram_mb = ${floor}(0, ram_mb - cast(${p('dr')} as bigint))
            where project_id = ${p('projectId')}`.compile(db),
      }),
    );
    // PostgreSQL: drop stale reservations and take their sums off the usage rows, one statement
    this.expireStmt = PreparedStatement.of<{ before: number }>((p) => ({
      compile: () =>
        sql`with d as (delete from quota_reservations where created_at < ${p('before')}
                       returning project_id, instances, cores, ram_mb),
            s as (select project_id, sum(instances) as i, sum(cores) as c, sum(ram_mb) as r, count(*) as n
                  from d group by project_id),
            u as (update quota_usage q set
                    reserved_instances = q.reserved_instances - s.i,
                    reserved_cores = q.reserved_cores - s.c,
                    reserved_ram_mb = q.reserved_ram_mb - s.r
                  from s where q.project_id = s.project_id)
            select cast(coalesce(sum(n), 0) as integer) as n from s`.compile(db),
    }));
  }

  async reserve(projectId: string, deltas: QuotaDeltas): Promise<QuotaReservation> {
    // PostgreSQL's admission reads the project's limits itself; they are read here only to
    // explain a refusal
    const given = this.database.dialect === 'postgres' ? this.defaults : await this.limitsOf(projectId);
    const reservation: QuotaReservation = { id: newId(), projectId, deltas };
    const params = {
      projectId,
      di: deltas.instances,
      dc: deltas.cores,
      dr: deltas.ramMb,
      li: given.instances,
      lc: given.cores,
      lr: given.ramMb,
    };
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await this.tryAdmit(reservation, params)) return reservation;
      const limits = this.database.dialect === 'postgres' ? await this.limitsOf(projectId) : given;
      const [row] = (await this.database.exec.run<UsageRow>(this.usageStmt.bind({ projectId }))).rows;
      if (!row) {
        await this.database.exec.run(this.ensureRow.bind({ projectId }));
        continue;
      }
      const refused = this.refusal(projectId, deltas, limits, row);
      if (refused) throw refused;
      // usage went down between the refused update and the read: try again
    }
    throw new ContentionError('quota admission', projectId, 20);
  }

  private async tryAdmit(reservation: QuotaReservation, params: AdmitParams): Promise<boolean> {
    const at = Date.now();
    if (this.soleOwner) {
      const { affected } = await this.database.exec.runRelaxed(this.admit.bind(params));
      if (affected > 0) this.held.set(reservation.id, reservation);
      return affected > 0;
    }
    if (this.database.dialect === 'postgres') {
      const { rows } = await this.database.exec.runRelaxed(
        this.pgAdmit.bind({ ...params, id: reservation.id, at }),
      );
      return rows.length === 1;
    }
    return this.database.exec.unit(async (tx) => {
      const { affected } = await tx.run(this.admit.bind(params));
      if (affected === 0) return false;
      await tx.run(
        this.insertReservation.bind({
          id: reservation.id,
          projectId: params.projectId,
          di: params.di,
          dc: params.dc,
          dr: params.dr,
          at,
        }),
      );
      return true;
    });
  }

  /**
   * The statement of a unit of work's `quota.consume` (see {@link SqlQuotaEngine.limitsForUnit}):
   * adds `deltas` to the project's usage if every limit holds. SQLite: it changes no row when
   * refused or when the project has no row yet ({@link SqlQuotaEngine.firstConsumeStatement},
   * {@link SqlQuotaEngine.refusal}); PostgreSQL: it creates the row on first use, and raises
   * `PreconditionState.QuotaRefused` when refused, aborting the unit's transaction.
   */
  consumeStatement(projectId: string, deltas: QuotaDeltas, limits: QuotaLimits): BoundStatement {
    return this.consumeStmt.bind(admitParams(projectId, deltas, limits));
  }

  /**
   * SQLite: the statement that creates the project's usage row with `deltas` if they fit alone
   * (for a {@link SqlQuotaEngine.consumeStatement} that changed nothing because the project has
   * no row yet; it changes nothing when refused).
   */
  firstConsumeStatement(projectId: string, deltas: QuotaDeltas, limits: QuotaLimits): BoundStatement {
    return this.consumeFirstStmt.bind(admitParams(projectId, deltas, limits));
  }

  /**
   * The limits to bind into {@link SqlQuotaEngine.consumeStatement}, read before the unit: the
   * project's (SQLite; cached while the file is exclusive), or the defaults (PostgreSQL, whose
   * statement reads the project's own limits itself).
   */
  limitsForUnit(projectId: string): Promise<QuotaLimits> | QuotaLimits {
    return this.database.dialect === 'postgres' ? this.defaults : this.limitsOf(projectId);
  }

  /** The statement of a unit of work's `quota.release` (usage never goes below zero). */
  releaseStatement(projectId: string, deltas: QuotaDeltas): BoundStatement {
    return this.releaseStmt.bind({ projectId, di: deltas.instances, dc: deltas.cores, dr: deltas.ramMb });
  }

  /** The statement reading a project's usage row (what {@link SqlQuotaEngine.refusal} is given). */
  usageStatement(projectId: string): BoundStatement {
    return this.usageStmt.bind({ projectId });
  }

  /**
   * Why `deltas` does not fit the project's usage `row` (undefined: no row, counted as zero)
   * under `limits`; undefined when it fits.
   */
  refusal(
    projectId: string,
    deltas: QuotaDeltas,
    limits: QuotaLimits,
    row: UsageRow | undefined,
  ): QuotaExceededError | undefined {
    const used = row
      ? { instances: Number(row.instances), cores: Number(row.cores), ramMb: Number(row.ram_mb) }
      : zero();
    const reserved = row
      ? {
          instances: Number(row.reserved_instances),
          cores: Number(row.reserved_cores),
          ramMb: Number(row.reserved_ram_mb),
        }
      : zero();
    for (const res of quotaResources) {
      const limit = limits[res];
      if (limit < 0 || deltas[res] <= 0) continue;
      if (used[res] + reserved[res] + deltas[res] > limit) {
        return new QuotaExceededError({
          projectId,
          resource: res,
          limit,
          inUse: used[res],
          reserved: reserved[res],
          requested: deltas[res],
        });
      }
    }
    return undefined;
  }

  /**
   * Why a consumption refused inside a transaction that is gone (PostgreSQL) does not fit now,
   * read from the project's row and limits; undefined when it fits now (usage went down since:
   * the unit may be tried again).
   */
  async explainRefusal(projectId: string, deltas: QuotaDeltas): Promise<QuotaExceededError | undefined> {
    const limits = await this.limitsOf(projectId);
    const [row] = (await this.database.exec.run<UsageRow>(this.usageStmt.bind({ projectId }))).rows;
    return this.refusal(projectId, deltas, limits, row);
  }

  async commit(reservation: QuotaReservation): Promise<void> {
    await this.settleReservation(reservation, true);
  }

  async rollback(reservation: QuotaReservation): Promise<void> {
    await this.settleReservation(reservation, false);
  }

  /** Removes the reservation row and its sums, adding them to usage when committing. Idempotent. */
  private async settleReservation(reservation: QuotaReservation, commit: boolean): Promise<void> {
    if (this.soleOwner) {
      if (!this.held.delete(reservation.id)) return;
      await this.database.exec.run(
        this.settle.bind(settling(reservation.projectId, reservation.deltas, commit)),
      );
      return;
    }
    if (this.database.dialect === 'postgres') {
      await this.database.exec.runRelaxed(this.pgSettle.bind({ id: reservation.id, commit: commit ? 1 : 0 }));
      return;
    }
    await this.database.exec.unit(async (tx) => {
      const [r] = (
        await tx.run<{ project_id: string; instances: number; cores: number; ram_mb: number }>(
          this.takeReservation.bind({ id: reservation.id }),
        )
      ).rows;
      if (!r) return;
      const deltas = { instances: Number(r.instances), cores: Number(r.cores), ramMb: Number(r.ram_mb) };
      await tx.run(this.settle.bind(settling(r.project_id, deltas, commit)));
    });
  }

  async release(projectId: string, deltas: QuotaDeltas): Promise<void> {
    await this.database.exec.runRelaxed(
      this.releaseStmt.bind({ projectId, di: deltas.instances, dc: deltas.cores, dr: deltas.ramMb }),
    );
  }

  async usage(projectId: string): Promise<QuotaUsage> {
    const [row] = (await this.database.exec.run<UsageRow>(this.usageStmt.bind({ projectId }))).rows;
    return {
      projectId,
      limits: await this.limitsOf(projectId),
      inUse: row
        ? { instances: Number(row.instances), cores: Number(row.cores), ramMb: Number(row.ram_mb) }
        : zero(),
      reserved: row
        ? {
            instances: Number(row.reserved_instances),
            cores: Number(row.reserved_cores),
            ramMb: Number(row.reserved_ram_mb),
          }
        : zero(),
    };
  }

  /** @throws ValidationError naming the field. */
  async setLimits(projectId: string, limits: Partial<QuotaLimits>): Promise<void> {
    const valid = parseInput(quotaLimitsSchema.partial(), limits);
    const current = await this.limitsOf(projectId);
    const data = JSON.stringify({ ...current, ...valid });
    this.ownLimits.forget(projectId);
    await this.database.exec.run(
      this.database.db
        .insertInto('quota_limits')
        .values({ project_id: projectId, data })
        .onConflict((oc) => oc.column('project_id').doUpdateSet({ data }))
        .compile(),
    );
    this.ownLimits.forget(projectId); // a read queued before the write may have cached the old row
  }

  /**
   * Changes the default limits of projects without their own.
   * @throws ValidationError naming the field that is not a whole number >= -1 (nothing changes)
   */
  setDefaults(limits: QuotaLimits): void {
    this.defaults = parseInput(quotaLimitsSchema, limits);
  }

  /**
   * Drops reservations older than `staleReservationMs` (left by a process that died between
   * reserving and settling) and takes them off their projects' reserved sums, without recounting
   * usage: the periodic reconciler calls this while the engine runs, so a crashed process's
   * reservations stop blocking quota without a restart or `resync`. A live process settles its
   * reservations within its admission, long before they are stale. With `staleReservationMs` 0
   * the engine is the sole owner, keeps reservations in memory, and there is nothing to expire.
   * @param now the time to judge age by (ms since the epoch; default now)
   * @returns how many reservations it dropped
   */
  async expireStale(now: number = Date.now()): Promise<number> {
    if (this.soleOwner) return 0;
    const before = now - this.staleReservationMs;
    if (this.database.dialect === 'postgres') {
      const { rows } = await this.database.exec.run<{ n: number | string }>(this.expireStmt.bind({ before }));
      return Number(rows[0]?.n ?? 0);
    }
    const { db } = this.database;
    return this.database.exec.unit(async (tx) => {
      const { rows } = await tx.run<{
        id: string;
        project_id: string;
        instances: number;
        cores: number;
        ram_mb: number;
      }>(
        db
          .deleteFrom('quota_reservations')
          .where('created_at', '<', before)
          .returning(['id', 'project_id', 'instances', 'cores', 'ram_mb'])
          .compile(),
      );
      const sums = new Map<string, { instances: number; cores: number; ramMb: number }>();
      for (const r of rows) {
        const sum = sums.get(r.project_id) ?? zero();
        sum.instances += Number(r.instances);
        sum.cores += Number(r.cores);
        sum.ramMb += Number(r.ram_mb);
        sums.set(r.project_id, sum);
      }
      for (const [projectId, d] of sums) await tx.run(this.settle.bind(settling(projectId, d, false)));
      return rows.length;
    });
  }

  /**
   * Recounts usage from the instances table (the argument is ignored: the database is the
   * authority shared by every process), drops reservations older than `staleReservationMs` and
   * recomputes the reserved sums from the reservations left.
   */
  async resync(): Promise<void> {
    const { db } = this.database;
    this.held.clear();
    await this.database.exec.unit(async (tx) => {
      if (this.database.dialect === 'postgres')
        await tx.run(sql`lock table quota_usage in exclusive mode`.compile(db));
      await tx.run(
        db
          .deleteFrom('quota_reservations')
          .where('created_at', '<', Date.now() - this.staleReservationMs)
          .compile(),
      );
      const { rows } = await tx.run<{ project_id: string; data: string }>(
        db.selectFrom('instances').select(['project_id', 'data']).compile(),
      );
      const counted = new Map<string, { used: QuotaDeltas; reserved: QuotaDeltas }>();
      const entry = (project: string) => {
        let e = counted.get(project);
        if (!e) {
          e = { used: zero(), reserved: zero() };
          counted.set(project, e);
        }
        return e as { used: ReturnType<typeof zero>; reserved: ReturnType<typeof zero> };
      };
      for (const r of rows) {
        const flavor = (JSON.parse(r.data) as { flavor: { vcpus: number; ramMb: number } }).flavor;
        const u = entry(r.project_id).used;
        u.instances += 1;
        u.cores += flavor.vcpus;
        u.ramMb += flavor.ramMb;
      }
      const held = await tx.run<{ project_id: string; instances: number; cores: number; ram_mb: number }>(
        db.selectFrom('quota_reservations').select(['project_id', 'instances', 'cores', 'ram_mb']).compile(),
      );
      for (const r of held.rows) {
        const res = entry(r.project_id).reserved;
        res.instances += Number(r.instances);
        res.cores += Number(r.cores);
        res.ramMb += Number(r.ram_mb);
      }
      await tx.run(db.deleteFrom('quota_usage').compile());
      for (const [project, { used, reserved }] of counted) {
        await tx.run(
          db
            .insertInto('quota_usage')
            .values({
              project_id: project,
              instances: used.instances,
              cores: used.cores,
              ram_mb: used.ramMb,
              reserved_instances: reserved.instances,
              reserved_cores: reserved.cores,
              reserved_ram_mb: reserved.ramMb,
            })
            .compile(),
        );
      }
    });
  }

  private async limitsOf(projectId: string): Promise<QuotaLimits> {
    const own = await this.ownLimits.get(projectId, async () => {
      const [row] = (await this.database.exec.run<{ data: string }>(this.limitsStmt.bind({ projectId })))
        .rows;
      return row ? (JSON.parse(row.data) as Partial<QuotaLimits>) : {};
    });
    return { ...this.defaults, ...own };
  }
}
