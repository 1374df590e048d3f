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
  generation: number | string | null;
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
 * PostgreSQL uses OpenStack Placement's guard: read the host's inventory, usage and generation
 * in one query, check, then write the claim, add the usage and bump the generation only if it is
 * still the one read (compare-and-set), in one statement (data-modifying CTEs), so no lock is
 * held across round trips; a moved generation means read and check again. Removing a claim
 * subtracts its usage without bumping the generation: a claim checked against the higher usage
 * read before the removal is still safe (its check was only stricter), so releases never make
 * claims retry. These statements lock rows every placement on a host shares, so they are marked
 * `contended` (the executor never runs two batches of them at once). SQLite runs the read,
 * check and writes in one unit of work under the database's write lock, which needs no
 * generation.
 */
export class SqlClaimStore implements ClaimStore {
  private readonly hostView;
  private readonly ensureGeneration;
  private readonly insertClaim;
  /** Usage upserts by number of resource classes (one statement for all of a claim's). */
  private readonly addUsage = new Map<number, PreparedStatement<Record<string, unknown>>>();
  private readonly deleteClaim;
  private readonly byInstance;
  private readonly pgAdd;
  private readonly pgRemove;
  private readonly parsedHosts = new Map<string, { data: string; host: Host }>();

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.hostView = PreparedStatement.of<{ hostId: string }>((p) =>
      db
        .selectFrom('hosts as h')
        .leftJoin('host_generations as g', 'g.host_id', 'h.id')
        .leftJoin('host_usage as u', 'u.host_id', 'h.id')
        .select(['h.data', 'g.generation', 'u.resource_class', 'u.used'])
        .where('h.id', '=', p('hostId')),
    );
    this.ensureGeneration = PreparedStatement.of<{ hostId: string }>(
      (p) =>
        db
          .insertInto('host_generations')
          .values({ host_id: p('hostId'), generation: 0 })
          .onConflict((oc) => oc.column('host_id').doNothing()),
      { contended: true },
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
    // PostgreSQL: each change in one statement, so no lock is held across round trips
    this.pgAdd = PreparedStatement.of<{
      hostId: string;
      generation: number;
      id: string;
      instanceId: string;
      data: string;
      rcs: string[];
      amounts: number[];
    }>(
      (p) => ({
        compile: () =>
          sql`with g as (
              update host_generations set generation = generation + 1
              where host_id = ${p('hostId')} and generation = ${p('generation')} returning host_id),
            c as (
              insert into claims (id, instance_id, host_id, data)
              select ${p('id')}, ${p('instanceId')}, g.host_id, ${p('data')} from g),
            u as (
              insert into host_usage (host_id, resource_class, used)
              select g.host_id, v.rc, v.amount
              from g, unnest(cast(${p('rcs')} as text[]), cast(${p('amounts')} as bigint[])) as v(rc, amount)
              on conflict (host_id, resource_class) do update set used = host_usage.used + excluded.used)
            select host_id from g`.compile(db),
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
    for (let attempt = 0; attempt < 20; attempt++) {
      let generation: number | undefined;
      try {
        generation = await this.checkCapacity(claim, resources);
        if (generation === undefined) {
          // first claim on this host (or a host unknown to the store): make its generation row
          await this.database.exec.run(this.ensureGeneration.bind({ hostId: claim.hostId }));
          continue;
        }
        if (await this.write(claim, resources, generation)) return;
      } catch (e) {
        if (e instanceof ClaimConflictError) throw e;
        if (isDuplicate(e)) throw new DuplicateError('claim', claim.id);
        if (!isSerialization(e)) throw e;
      }
    }
    throw new ClaimConflictError(claim.hostId, claim.id, 'host generation kept changing');
  }

  /** Reads the host; throws if the claim does not fit. Returns the generation read. */
  private async checkCapacity(
    claim: Claim,
    resources: ReadonlyArray<[string, number]>,
  ): Promise<number | undefined> {
    const { rows } = await this.database.exec.run<HostView>(this.hostView.bind({ hostId: claim.hostId }));
    if (rows.length === 0) {
      // no host record: nothing to check capacity against (the scheduler checked its own view)
      return this.unknownHostGeneration(claim.hostId);
    }
    if (rows[0]!.generation === null) return undefined;
    this.fits(claim, resources, rows);
    return Number(rows[0]!.generation);
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

  private async unknownHostGeneration(hostId: string): Promise<number | undefined> {
    const { db } = this.database;
    const { rows } = await this.database.exec.run<{ generation: number | string }>(
      db.selectFrom('host_generations').select('generation').where('host_id', '=', hostId).compile(),
    );
    return rows[0] ? Number(rows[0].generation) : undefined;
  }

  /** PostgreSQL: writes the claim if the host's generation is still `generation`; false when it moved on. */
  private async write(
    claim: Claim,
    resources: ReadonlyArray<[string, number]>,
    generation: number,
  ): Promise<boolean> {
    const { rows } = await this.database.exec.run(
      this.pgAdd.bind({
        hostId: claim.hostId,
        generation,
        id: claim.id,
        instanceId: claim.instanceId,
        data: JSON.stringify(claim),
        rcs: resources.map(([rc]) => rc),
        amounts: resources.map(([, a]) => a),
      }),
    );
    return rows.length === 1;
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
