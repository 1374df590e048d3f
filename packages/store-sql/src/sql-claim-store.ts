import { type Claim, ClaimConflictError, capacityOf, DuplicateError, type Host } from '@nova-lfs/core';
import type {
  ClaimChange,
  ClaimChangeFeed,
  ClaimGroup,
  ClaimStore,
  GroupMemberClaim,
} from '@nova-lfs/core/ports';
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

interface ChangeRow {
  claim_id: string | null;
  host_id: string | null;
  data: string | null;
}

/** Options of {@link SqlClaimStore}. */
export interface SqlClaimStoreOptions {
  /** How long the change feed keeps a change (ms; default 10 minutes): a reader away longer reloads. */
  readonly feedRetentionMs?: number;
  /** How often this store prunes the feed (ms; default 1 minute). */
  readonly pruneEveryMs?: number;
  /** Clock of the pruning schedule (tests). */
  readonly now?: () => number;
}

/** Hard group policies, checked in the claim's own transaction. */
function hardPolicyOf(claim: Claim): ClaimGroup | undefined {
  const group = (claim as Partial<GroupMemberClaim>).group;
  return group && (group.policy === 'anti-affinity' || group.policy === 'affinity') ? group : undefined;
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
 *
 * Hard server-group policies (claims of `GroupMemberClaim`s) are checked in the same statement
 * against every member's claim, whichever process made it: anti-affinity refuses a host holding
 * another member's claim (the host's generation row orders the two claims), affinity a host
 * other than the members' (affinity claims also lock the group's row in `claim_group_locks`).
 *
 * A change feed ({@link ClaimChangeFeed}) tells schedulers of other processes what was claimed
 * and released: every add and remove also writes a row in `claim_changes`, in the same statement
 * (SQLite: the same unit; only when the file is shared). Changes are pruned after
 * `feedRetentionMs`; a reader whose cursor is older reloads a snapshot.
 */
export class SqlClaimStore implements ClaimStore, ClaimChangeFeed {
  /** Other processes may use the database (PostgreSQL, or a SQLite file opened `shared`). */
  readonly shared: boolean;
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
  private readonly pgLockGroup;
  private readonly groupConflict;
  private readonly insertChange;
  private readonly snapshotStmt;
  private readonly changesStmt;
  private readonly retentionMs: number;
  private readonly pruneEveryMs: number;
  private readonly now: () => number;
  /** Cursors this store handed out, with when (the pruning point is one older than the retention). */
  private readonly cursorsSeen: Array<{ readonly at: number; readonly cursor: string }> = [];
  private lastPruneAt: number;

  constructor(
    private readonly database: SqlDatabase,
    options: SqlClaimStoreOptions = {},
  ) {
    const { db } = database;
    this.shared = !database.exclusive;
    this.retentionMs = options.feedRetentionMs ?? 600_000;
    this.pruneEveryMs = options.pruneEveryMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.lastPruneAt = this.now();
    this.hostView = PreparedStatement.of<{ hostId: string }>((p) =>
      db
        .selectFrom('hosts as h')
        .leftJoin('host_usage as u', 'u.host_id', 'h.id')
        .select(['h.data', 'u.resource_class', 'u.used'])
        .where('h.id', '=', p('hostId')),
    );
    this.insertClaim = PreparedStatement.of<{
      id: string;
      instanceId: string;
      hostId: string;
      data: string;
      groupId: string | null;
    }>((p) => ({
      compile: () =>
        sql`insert into claims (id, instance_id, host_id, data, group_id)
            values (${p('id')}, ${p('instanceId')}, ${p('hostId')}, ${p('data')}, ${p('groupId')})`.compile(
          db,
        ),
    }));
    // SQLite: the unit runs under the database's write lock, so this read sees every member
    this.groupConflict = PreparedStatement.of<{
      groupId: string;
      instanceId: string;
      hostId: string;
      affinity: number;
    }>((p) => ({
      compile: () =>
        sql`select host_id from claims
            where group_id = ${p('groupId')} and instance_id <> ${p('instanceId')}
              and ((${p('affinity')} = 0 and host_id = ${p('hostId')}) or (${p('affinity')} = 1 and host_id <> ${p('hostId')}))
            limit 1`.compile(db),
    }));
    this.insertChange = PreparedStatement.of<{ claimId: string; hostId: string; data: string | null }>(
      (p) => ({
        compile: () =>
          sql`insert into claim_changes (claim_id, host_id, data)
            values (${p('claimId')}, ${p('hostId')}, ${p('data')})`.compile(db),
      }),
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
    // affinity claims of one group lock its row first (then the host's), so that two processes
    // cannot each claim a different "first" host for the group at once
    this.pgLockGroup = PreparedStatement.of<{ groupId: string }>(
      (p) => ({
        compile: () =>
          sql`insert into claim_group_locks (group_id, generation) values (${p('groupId')}, 1)
              on conflict (group_id) do update set generation = claim_group_locks.generation + 1`.compile(db),
      }),
      { contended: true },
    );
    this.pgAddIfFits = PreparedStatement.of<{
      hostId: string;
      id: string;
      instanceId: string;
      data: string;
      rcs: string[];
      amounts: number[];
      groupId: string | null;
      policy: string | null;
    }>(
      (p) => ({
        compile: () =>
          sql`with need as (
              select v.rc, v.amount
              from unnest(cast(${p('rcs')} as text[]), cast(${p('amounts')} as bigint[])) as v(rc, amount)),
            inv as (select cast(data as jsonb) -> 'inventory' as inv from hosts where id = ${p('hostId')}),
            member as (
              -- hard group policies against every member's claim (the late check, in the claim)
              select 'server group ' || g.group_id || ' (' || cast(${p('policy')} as text) || '): member claim on '
                     || g.host_id as reason
              from claims g
              where g.group_id = cast(${p('groupId')} as text)
                and g.instance_id <> cast(${p('instanceId')} as text)
                and ((cast(${p('policy')} as text) = 'anti-affinity' and g.host_id = cast(${p('hostId')} as text))
                  or (cast(${p('policy')} as text) = 'affinity' and g.host_id <> cast(${p('hostId')} as text)))
              limit 1),
            short as (
              -- capacityOf() in core: floor((total - reserved) * allocationRatio), in doubles as in JS
              select 'insufficient ' || n.rc as reason from need n cross join inv
              left join host_usage u on u.host_id = ${p('hostId')} and u.resource_class = n.rc
              where inv.inv -> n.rc is null
                 or coalesce(u.used, 0) + n.amount > floor(
                      (cast(inv.inv -> n.rc ->> 'total' as float8) - cast(inv.inv -> n.rc ->> 'reserved' as float8))
                      * cast(inv.inv -> n.rc ->> 'allocationRatio' as float8))
              limit 1),
            refused as (select reason from member union all select reason from short limit 1),
            c as (
              insert into claims (id, instance_id, host_id, data, group_id)
              select ${p('id')}, ${p('instanceId')}, ${p('hostId')}, ${p('data')}, cast(${p('groupId')} as text)
              where not exists (select 1 from refused)
              returning id, host_id, data),
            u as (
              insert into host_usage (host_id, resource_class, used)
              select c.host_id, n.rc, n.amount from c cross join need n
              on conflict (host_id, resource_class) do update set used = host_usage.used + excluded.used),
            f as (insert into claim_changes (claim_id, host_id, data) select id, host_id, data from c)
            select (select reason from refused) as short`.compile(db),
      }),
      { contended: true },
    );
    this.pgRemove = PreparedStatement.of<{ id: string }>(
      (p) => ({
        compile: () =>
          sql`with c as (delete from claims where id = ${p('id')} returning id, host_id, data),
            u as (
              update host_usage h set used = h.used - cast(r.value as bigint)
              from c, jsonb_each_text(cast(c.data as jsonb) -> 'resources') as r
              where h.host_id = c.host_id and h.resource_class = r.key),
            f as (insert into claim_changes (claim_id, host_id, data) select id, host_id, null from c)
            select host_id from c`.compile(db),
      }),
      { contended: true },
    );
    if (database.dialect === 'postgres') {
      // one statement, one snapshot: every change below its xmin is in the claims it reads
      this.snapshotStmt = PreparedStatement.of<Record<string, never>>(() => ({
        compile: () =>
          sql`select cast(pg_snapshot_xmin(pg_current_snapshot()) as text) as bound, c.data
              from (select 1) as one left join claims c on true`.compile(db),
      }));
      // the changes of transactions that ended before the oldest one still running: all committed
      this.changesStmt = PreparedStatement.of<{ cursor: string }>((p) => ({
        compile: () =>
          sql`with b as (select pg_snapshot_xmin(pg_current_snapshot()) as bound)
              select cast(b.bound as text) as bound,
                     cast(cast(${p('cursor')} as text) as xid8) < f.pruned_below as stale,
                     c.claim_id, c.host_id, c.data
              from b cross join claim_feed f
              left join claim_changes c
                on c.xid >= cast(cast(${p('cursor')} as text) as xid8) and c.xid < b.bound
              where f.id = 1
              order by c.xid, c.seq`.compile(db),
      }));
    } else {
      this.snapshotStmt = PreparedStatement.of<Record<string, never>>(() => ({
        compile: () =>
          sql`select coalesce((select max(seq) from claim_changes),
                              (select pruned_through from claim_feed where id = 1)) as bound, c.data
              from (select 1) as one left join claims c on 1`.compile(db),
      }));
      this.changesStmt = PreparedStatement.of<{ cursor: string }>((p) => ({
        compile: () =>
          sql`select f.pruned_through > cast(${p('cursor')} as integer) as stale,
                     c.seq as bound, c.claim_id, c.host_id, c.data
              from claim_feed f left join claim_changes c on c.seq > cast(${p('cursor')} as integer)
              where f.id = 1
              order by c.seq`.compile(db),
      }));
    }
  }

  async add(claim: Claim): Promise<void> {
    const resources = Object.entries(claim.resources).filter(([, amount]) => amount);
    const group = hardPolicyOf(claim);
    if (this.database.dialect === 'sqlite') {
      try {
        await this.database.exec.unit(async (tx) => {
          const { rows } = await tx.run<HostView>(this.hostView.bind({ hostId: claim.hostId }));
          if (rows[0]) this.fits(claim, resources, rows);
          if (group) await this.checkGroup(tx, claim, group);
          await tx.run(this.insertClaimStmt(claim));
          await this.changeUsage(tx, claim.hostId, resources, 1);
          if (this.shared) await tx.run(this.changeStmt(claim.id, claim.hostId, JSON.stringify(claim)));
        });
      } catch (e) {
        if (isDuplicate(e)) throw new DuplicateError('claim', claim.id);
        throw e;
      }
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const results = await this.database.exec.runAll([
          ...(group?.policy === 'affinity' ? [this.pgLockGroup.bind({ groupId: group.id })] : []),
          this.pgLockHost.bind({ hostId: claim.hostId }),
          this.pgAddIfFits.bind({
            hostId: claim.hostId,
            id: claim.id,
            instanceId: claim.instanceId,
            data: JSON.stringify(claim),
            rcs: resources.map(([rc]) => rc),
            amounts: resources.map(([, a]) => a),
            groupId: groupIdOf(claim),
            policy: group?.policy ?? null,
          }),
        ]);
        const short = results.at(-1)!.rows[0]?.short;
        if (typeof short === 'string') throw new ClaimConflictError(claim.hostId, claim.id, short);
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

  /** SQLite: throws `ClaimConflictError` if another member's claim breaks the hard policy. */
  private async checkGroup(tx: SqlRunner, claim: Claim, group: ClaimGroup): Promise<void> {
    const { rows } = await tx.run<{ host_id: string }>(
      this.groupConflict.bind({
        groupId: group.id,
        instanceId: claim.instanceId,
        hostId: claim.hostId,
        affinity: group.policy === 'affinity' ? 1 : 0,
      }),
    );
    const member = rows[0];
    if (member) {
      throw new ClaimConflictError(
        claim.hostId,
        claim.id,
        `server group ${group.id} (${group.policy}): member claim on ${member.host_id}`,
      );
    }
  }

  private insertClaimStmt(claim: Claim) {
    return this.insertClaim.bind({
      id: claim.id,
      instanceId: claim.instanceId,
      hostId: claim.hostId,
      data: JSON.stringify(claim),
      groupId: groupIdOf(claim),
    });
  }

  private changeStmt(claimId: string, hostId: string, data: string | null) {
    return this.insertChange.bind({ claimId, hostId, data });
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
          if (this.shared) await tx.run(this.changeStmt(claimId, row.host_id, null));
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

  /** {@link ClaimChangeFeed}: every claim, read with the cursor in one statement. */
  async claimSnapshot(): Promise<{ claims: Claim[]; cursor: string }> {
    const { rows } = await this.database.exec.run<{ bound: string | number | null; data: string | null }>(
      this.snapshotStmt.bind({}),
    );
    const claims: Claim[] = [];
    for (const r of rows) if (r.data !== null) claims.push(JSON.parse(r.data) as Claim);
    const cursor = String(rows[0]?.bound ?? 0);
    this.noteCursor(cursor);
    return { claims, cursor };
  }

  /** {@link ClaimChangeFeed}: what was claimed and released since `cursor`, oldest first. */
  async claimChanges(cursor: string): Promise<{ changes: ClaimChange[]; cursor: string } | undefined> {
    await this.pruneIfDue();
    const { rows } = await this.database.exec.run<
      ChangeRow & { bound: string | number | null; stale: boolean | number }
    >(this.changesStmt.bind({ cursor }));
    if (rows[0]?.stale === true || rows[0]?.stale === 1) return undefined;
    const changes: ClaimChange[] = [];
    let next = cursor;
    for (const r of rows) {
      if (this.database.dialect === 'sqlite' && r.bound !== null) next = String(r.bound);
      if (r.claim_id === null || r.host_id === null) continue;
      changes.push(
        r.data === null
          ? { kind: 'removed', claimId: r.claim_id, hostId: r.host_id }
          : { kind: 'added', claim: JSON.parse(r.data) as Claim },
      );
    }
    if (this.database.dialect === 'postgres') next = String(rows[0]?.bound ?? cursor);
    this.noteCursor(next);
    return { changes, cursor: next };
  }

  private noteCursor(cursor: string): void {
    const at = this.now();
    const last = this.cursorsSeen.at(-1);
    // one sample per second is enough to find a pruning point
    if (!last || at - last.at >= 1_000) this.cursorsSeen.push({ at, cursor });
  }

  /**
   * Prunes changes older than the retention: below a cursor this store handed out at least
   * `feedRetentionMs` ago (on PostgreSQL, below that xmin; on SQLite, up to that sequence
   * number), and records the point so that older cursors are told to reload.
   */
  private async pruneIfDue(): Promise<void> {
    const now = this.now();
    if (now - this.lastPruneAt < this.pruneEveryMs) return;
    let point: string | undefined;
    while (this.cursorsSeen.length > 0 && now - this.cursorsSeen[0]!.at >= this.retentionMs) {
      point = this.cursorsSeen.shift()!.cursor;
    }
    if (point === undefined) return;
    this.lastPruneAt = now;
    const { db } = this.database;
    if (this.database.dialect === 'postgres') {
      await this.database.exec.run(
        sql`with d as (delete from claim_changes where xid < cast(cast(${point} as text) as xid8))
            update claim_feed set pruned_below = cast(cast(${point} as text) as xid8)
            where id = 1 and pruned_below < cast(cast(${point} as text) as xid8)`.compile(db),
      );
      return;
    }
    // the mark first: a reader never finds changes missing without being told to reload
    await this.database.exec.unit(async (tx) => {
      await tx.run(
        sql`update claim_feed set pruned_through = max(pruned_through, cast(${point} as integer))
            where id = 1`.compile(db),
      );
      await tx.run(sql`delete from claim_changes where seq <= cast(${point} as integer)`.compile(db));
    });
  }

  private parse(hostId: string, data: string): Host {
    const cached = this.parsedHosts.get(hostId);
    if (cached?.data === data) return cached.host;
    const host = JSON.parse(data) as Host;
    this.parsedHosts.set(hostId, { data, host });
    return host;
  }
}

/** The claim's server group id, recorded in its own column. */
function groupIdOf(claim: Claim): string | null {
  return (claim as Partial<GroupMemberClaim>).group?.id ?? null;
}

function isSerialization(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}
