import {
  type Claim,
  ClaimConflictError,
  type ClaimStore,
  capacityOf,
  DuplicateError,
  type Host,
} from '@nova-lfs/core';
import type { Kysely, Transaction } from 'kysely';
import { type SqlDatabase, writeTransaction } from './database.js';
import type { Database } from './schema.js';

class GenerationConflict extends Error {}

/**
 * {@link ClaimStore} on SQL with OpenStack Placement's guard: adding a claim re-checks the host's
 * capacity against every process's claims and bumps the host's generation with compare-and-set,
 * in one transaction. A claim that no longer fits raises `ClaimConflictError`, upon which the
 * scheduler reloads claims and chooses again (or moves to the next alternate).
 */
export class SqlClaimStore implements ClaimStore {
  constructor(private readonly database: SqlDatabase) {}

  async add(claim: Claim): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await writeTransaction(this.database, (trx) => this.addIn(trx, claim));
        return;
      } catch (e) {
        if (e instanceof GenerationConflict) continue;
        if (/unique|duplicate/i.test((e as Error).message)) throw new DuplicateError('claim', claim.id);
        if (isSerialization(e)) continue;
        throw e;
      }
    }
    throw new ClaimConflictError(claim.hostId, claim.id, 'host generation kept changing');
  }

  private async addIn(trx: Kysely<Database> | Transaction<Database>, claim: Claim): Promise<void> {
    const hostRow = await trx
      .selectFrom('hosts')
      .select('data')
      .where('id', '=', claim.hostId)
      .executeTakeFirst();
    await trx
      .insertInto('host_generations')
      .values({ host_id: claim.hostId, generation: 0 })
      .onConflict((oc) => oc.column('host_id').doNothing())
      .execute();
    const gen = await trx
      .selectFrom('host_generations')
      .select('generation')
      .where('host_id', '=', claim.hostId)
      .executeTakeFirstOrThrow();
    if (hostRow) {
      const host = JSON.parse(hostRow.data) as Host;
      const usage = await trx
        .selectFrom('host_usage')
        .select(['resource_class', 'used'])
        .where('host_id', '=', claim.hostId)
        .execute();
      const used = new Map(usage.map((u) => [u.resource_class, Number(u.used)]));
      for (const [rc, amount] of Object.entries(claim.resources)) {
        if (!amount) continue;
        const inv = host.inventory[rc];
        if (!inv || (used.get(rc) ?? 0) + amount > capacityOf(inv)) {
          throw new ClaimConflictError(claim.hostId, claim.id, `insufficient ${rc}`);
        }
      }
    }
    await trx
      .insertInto('claims')
      .values({
        id: claim.id,
        instance_id: claim.instanceId,
        host_id: claim.hostId,
        data: JSON.stringify(claim),
      })
      .execute();
    for (const [rc, amount] of Object.entries(claim.resources)) {
      if (!amount) continue;
      await trx
        .insertInto('host_usage')
        .values({ host_id: claim.hostId, resource_class: rc, used: amount })
        .onConflict((oc) =>
          oc
            .columns(['host_id', 'resource_class'])
            .doUpdateSet((eb) => ({ used: eb('host_usage.used', '+', amount) })),
        )
        .execute();
    }
    const bumped = await trx
      .updateTable('host_generations')
      .set({ generation: gen.generation + 1 })
      .where('host_id', '=', claim.hostId)
      .where('generation', '=', gen.generation)
      .executeTakeFirst();
    if (Number(bumped.numUpdatedRows) === 0) throw new GenerationConflict();
  }

  async remove(claimId: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await writeTransaction(this.database, async (trx) => {
          const row = await trx
            .selectFrom('claims')
            .select('data')
            .where('id', '=', claimId)
            .executeTakeFirst();
          if (!row) return;
          const claim = JSON.parse(row.data) as Claim;
          // a concurrent remove of the same claim may have won (READ COMMITTED): only the
          // transaction that really deleted the row gives the resources back
          const deleted = await trx.deleteFrom('claims').where('id', '=', claimId).executeTakeFirst();
          if (Number(deleted.numDeletedRows) === 0) return;
          for (const [rc, amount] of Object.entries(claim.resources)) {
            if (!amount) continue;
            await trx
              .updateTable('host_usage')
              .set((eb) => ({ used: eb('used', '-', amount) }))
              .where('host_id', '=', claim.hostId)
              .where('resource_class', '=', rc)
              .execute();
          }
          await trx
            .updateTable('host_generations')
            .set((eb) => ({ generation: eb('generation', '+', 1) }))
            .where('host_id', '=', claim.hostId)
            .execute();
        });
        return;
      } catch (e) {
        if (isSerialization(e)) continue;
        throw e;
      }
    }
  }

  async list(filter: { hostId?: string; instanceId?: string } = {}): Promise<Claim[]> {
    let q = this.database.db.selectFrom('claims').select('data');
    if (filter.hostId !== undefined) q = q.where('host_id', '=', filter.hostId);
    if (filter.instanceId !== undefined) q = q.where('instance_id', '=', filter.instanceId);
    return (await q.execute()).map((r) => JSON.parse(r.data) as Claim);
  }

  /** Claimed amounts per resource class on a host, as stored (all processes). */
  async usage(hostId: string): Promise<Record<string, number>> {
    const rows = await this.database.db
      .selectFrom('host_usage')
      .select(['resource_class', 'used'])
      .where('host_id', '=', hostId)
      .execute();
    return Object.fromEntries(rows.map((r) => [r.resource_class, Number(r.used)]));
  }
}

function isSerialization(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}
