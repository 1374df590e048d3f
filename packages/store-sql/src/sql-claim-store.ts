import {
  type Claim,
  ClaimConflictError,
  type ClaimStore,
  capacityOf,
  DuplicateError,
  type Host,
} from '@nova-lfs/core';
import { sql } from 'kysely';
import type { SqlDatabase } from './database.js';
import { isDuplicate } from './errors.js';
import type { SqlRunner } from './sql-executor.js';
import { PreparedStatement } from './statement.js';

interface HostView {
  data: string;
  resource_class: string | null;
  used: number | string | null;
}

/**
 * {@link ClaimStore} on SQL. A claim is checked against the host's inventory and usage (every
 * process's claims) and written with its usage atomically. A claim that no longer fits raises
 * `ClaimConflictError`, upon which the scheduler reloads claims and chooses again (or moves to
 * the next alternate). Removing a claim gives its resources back once, however many processes
 * remove it at the same time.
 *
 * PostgreSQL: a claim is two statements that commit together, sent in one round trip
 * (`SqlExecutor.runAll`): bump the host's generation row (as OpenStack Placement guards a resource
 * provider; its row lock orders every process's claims on the host), then check the claim
 * against the host's inventory and usage and write it with its usage only if it fits. In READ
 * COMMITTED each statement reads with a snapshot taken when it starts, so the check sees every
 * claim committed before the lock was granted: no read-then-compare-and-set, no retry when
 * claims on one host race. Removing a claim subtracts its usage without taking the lock: a claim
 * checked against the higher usage before the removal is still safe (its check was only
 * stricter). These statements lock rows every placement on a host shares, so they are marked
 * `contended` (the executor never runs two batches of them at once; two processes whose
 * batches lock hosts in opposite orders deadlock, PostgreSQL aborts one, and the claim is
 * tried again). SQLite runs the read, check and writes in one unit of work under the
 * database's write lock.
 */
export class SqlClaimStore implements ClaimStore {
  private readonly hostView;
  private readonly insertClaim;
  /** Usage upserts by number of resource classes (one statement for all of a claim's). */
  private readonly addUsage = new Map<number, PreparedStatement<Record<string, unknown>>>();
  private readonly deleteClaim;
  private readonly byInstance;
  private readonly pgLockHost;
  private readonly pgAddIfFits;
  private readonly pgRemove;
  private readonly parsedHosts = new Map<string, { data: string; host: Host }>();

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.hostView = PreparedStatement.of<{ hostId: string }>((p) =>
      db
        .selectFrom('hosts as h')
        .leftJoin('host_usage as u', 'u.host_id', 'h.id')
        .select(['h.data', 'u.resource_class', 'u.used'])
        .where('h.id', '=', p('hostId')),
    );
    this.insertClaim = PreparedStatement.of<{ id: string; instanceId: string; hostId: string; data: string }>(
      (p) =>
        db
          .insertInto('claims')
          .values({ id: p('id'), instance_id: p('instanceId'), host_id: p('hostId'), data: p('data') }),
    );
    this.byInstance = PreparedStatement.of<{ instanceId: string }>((p) =>
      db.selectFrom('claims').select('data').where('instance_id', '=', p('instanceId')),
    );
    this.deleteClaim = PreparedStatement.of<{ id: string }>((p) =>
      db.deleteFrom('claims').where('id', '=', p('id')).returning(['host_id', 'data']),
    );
    // PostgreSQL: a claim is two statements sent together (SqlExecutor.runAll), so no lock is held
    // across round trips: take the host's generation row (its lock orders claims on the host),
    // then, with a snapshot taken after the lock, write the claim and its usage if it fits
    this.pgLockHost = PreparedStatement.of<{ hostId: string }>(
      (p) =>
        db
          .insertInto('host_generations')
          .values({ host_id: p('hostId'), generation: 1 })
          .onConflict((oc) =>
            oc.column('host_id').doUpdateSet({ generation: sql`host_generations.generation + 1` }),
          ),
      { contended: true },
    );
    this.pgAddIfFits = PreparedStatement.of<{
      hostId: string;
      id: string;
      instanceId: string;
      data: string;
      rcs: string[];
      amounts: number[];
    }>(
      (p) => ({
        compile: () =>
          sql`with need as (
              select v.rc, v.amount
              from unnest(cast(${p('rcs')} as text[]), cast(${p('amounts')} as bigint[])) as v(rc, amount)),
            inv as (select cast(data as jsonb) -> 'inventory' as inv from hosts where id = ${p('hostId')}),
            short as (
              -- capacityOf() in core: floor((total - reserved) * allocationRatio), in doubles as in JS
              select n.rc from need n cross join inv
              left join host_usage u on u.host_id = ${p('hostId')} and u.resource_class = n.rc
              where inv.inv -> n.rc is null
                 or coalesce(u.used, 0) + n.amount > floor(
                      (cast(inv.inv -> n.rc ->> 'total' as float8) - cast(inv.inv -> n.rc ->> 'reserved' as float8))
                      * cast(inv.inv -> n.rc ->> 'allocationRatio' as float8))
              limit 1),
            c as (
              insert into claims (id, instance_id, host_id, data)
              select ${p('id')}, ${p('instanceId')}, ${p('hostId')}, ${p('data')}
              where not exists (select 1 from short)
              returning host_id),
            u as (
              insert into host_usage (host_id, resource_class, used)
              select c.host_id, n.rc, n.amount from c cross join need n
              on conflict (host_id, resource_class) do update set used = host_usage.used + excluded.used)
            select (select rc from short) as short`.compile(db),
      }),
      { contended: true },
    );
    this.pgRemove = PreparedStatement.of<{ id: string }>(
      (p) => ({
        compile: () =>
          sql`with c as (delete from claims where id = ${p('id')} returning host_id, data),
            u as (
              update host_usage h set used = h.used - cast(r.value as bigint)
              from c, jsonb_each_text(cast(c.data as jsonb) -> 'resources') as r
              where h.host_id = c.host_id and h.resource_class = r.key)
            select host_id from c`.compile(db),
      }),
      { contended: true },
    );
  }

  async add(claim: Claim): Promise<void> {
    const resources = Object.entries(claim.resources).filter(([, amount]) => amount);
    if (this.database.dialect === 'sqlite') {
      try {
        await this.database.exec.unit(async (tx) => {
          const { rows } = await tx.run<HostView>(this.hostView.bind({ hostId: claim.hostId }));
          if (rows[0]) this.fits(claim, resources, rows);
          await tx.run(this.insertClaimStmt(claim));
          await this.changeUsage(tx, claim.hostId, resources, 1);
        });
      } catch (e) {
        if (isDuplicate(e)) throw new DuplicateError('claim', claim.id);
        throw e;
      }
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const [, added] = await this.database.exec.runAll([
          this.pgLockHost.bind({ hostId: claim.hostId }),
          this.pgAddIfFits.bind({
            hostId: claim.hostId,
            id: claim.id,
            instanceId: claim.instanceId,
            data: JSON.stringify(claim),
            rcs: resources.map(([rc]) => rc),
            amounts: resources.map(([, a]) => a),
          }),
        ]);
        const short = added!.rows[0]?.short;
        if (typeof short === 'string')
          throw new ClaimConflictError(claim.hostId, claim.id, `insufficient ${short}`);
        return;
      } catch (e) {
        if (e instanceof ClaimConflictError) throw e;
        if (isDuplicate(e)) throw new DuplicateError('claim', claim.id);
        // a deadlock with another process's claims on the same hosts: nothing was written
        if (!isSerialization(e) || attempt >= 20) throw e;
      }
    }
  }

  /** Throws `ClaimConflictError` unless the claim fits the host's inventory beside its usage. */
  private fits(claim: Claim, resources: ReadonlyArray<[string, number]>, rows: readonly HostView[]): void {
    const host = this.parse(claim.hostId, rows[0]!.data);
    const used = new Map<string, number>();
    for (const r of rows) if (r.resource_class !== null) used.set(r.resource_class, Number(r.used));
    for (const [rc, amount] of resources) {
      const inv = host.inventory[rc];
      if (!inv || (used.get(rc) ?? 0) + amount > capacityOf(inv)) {
        throw new ClaimConflictError(claim.hostId, claim.id, `insufficient ${rc}`);
      }
    }
  }

  private insertClaimStmt(claim: Claim) {
    return this.insertClaim.bind({
      id: claim.id,
      instanceId: claim.instanceId,
      hostId: claim.hostId,
      data: JSON.stringify(claim),
    });
  }

  async remove(claimId: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        if (this.database.dialect === 'postgres') {
          await this.database.exec.run(this.pgRemove.bind({ id: claimId }));
          return;
        }
        await this.database.exec.unit(async (tx) => {
          // only the unit that really deleted the row gives the resources back
          const [row] = (
            await tx.run<{ host_id: string; data: string }>(this.deleteClaim.bind({ id: claimId }))
          ).rows;
          if (!row) return;
          const claim = JSON.parse(row.data) as Claim;
          const resources = Object.entries(claim.resources).filter(([, amount]) => amount);
          await this.changeUsage(tx, row.host_id, resources, -1);
        });
        return;
      } catch (e) {
        if (isSerialization(e)) continue;
        throw e;
      }
    }
  }

  private async changeUsage(
    tx: SqlRunner,
    hostId: string,
    resources: ReadonlyArray<[string, number]>,
    sign: 1 | -1,
  ): Promise<void> {
    if (resources.length === 0) return;
    const params: Record<string, unknown> = { hostId };
    resources.forEach(([rc, amount], i) => {
      params[`rc${i}`] = rc;
      params[`amount${i}`] = sign * amount;
    });
    await tx.run(this.usageUpsert(resources.length).bind(params));
  }

  private usageUpsert(count: number): PreparedStatement<Record<string, unknown>> {
    let stmt = this.addUsage.get(count);
    if (!stmt) {
      const { db } = this.database;
      stmt = PreparedStatement.of<Record<string, unknown>>((p) =>
        db
          .insertInto('host_usage')
          .values(
            Array.from({ length: count }, (_, i) => ({
              host_id: p('hostId') as string,
              resource_class: p(`rc${i}`) as string,
              used: p(`amount${i}`) as number,
            })),
          )
          .onConflict((oc) =>
            oc
              .columns(['host_id', 'resource_class'])
              .doUpdateSet((eb) => ({ used: eb('host_usage.used', '+', eb.ref('excluded.used')) })),
          ),
      );
      this.addUsage.set(count, stmt);
    }
    return stmt;
  }

  async list(filter: { hostId?: string; instanceId?: string } = {}): Promise<Claim[]> {
    if (filter.instanceId !== undefined && filter.hostId === undefined) {
      const { rows } = await this.database.exec.run<{ data: string }>(
        this.byInstance.bind({ instanceId: filter.instanceId }),
      );
      return rows.map((r) => JSON.parse(r.data) as Claim);
    }
    let q = this.database.db.selectFrom('claims').select('data');
    if (filter.hostId !== undefined) q = q.where('host_id', '=', filter.hostId);
    if (filter.instanceId !== undefined) q = q.where('instance_id', '=', filter.instanceId);
    const { rows } = await this.database.exec.run<{ data: string }>(q.compile());
    return rows.map((r) => JSON.parse(r.data) as Claim);
  }

  /** Claimed amounts per resource class on a host, as stored (all processes). */
  async usage(hostId: string): Promise<Record<string, number>> {
    const { rows } = await this.database.exec.run<{ resource_class: string; used: number | string }>(
      this.database.db
        .selectFrom('host_usage')
        .select(['resource_class', 'used'])
        .where('host_id', '=', hostId)
        .compile(),
    );
    return Object.fromEntries(rows.map((r) => [r.resource_class, Number(r.used)]));
  }

  private parse(hostId: string, data: string): Host {
    const cached = this.parsedHosts.get(hostId);
    if (cached?.data === data) return cached.host;
    const host = JSON.parse(data) as Host;
    this.parsedHosts.set(hostId, { data, host });
    return host;
  }
}

function isSerialization(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}
