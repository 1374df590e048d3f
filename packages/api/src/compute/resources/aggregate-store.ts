import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AggregateRow, ComputeResourceTables } from './resource-tables.js';

/** A host aggregate as the API keeps it. */
export interface ApiAggregate {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly availabilityZone: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly hosts: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string | null;
}

/** Nova's timestamp format: `2016-12-27T22:51:32.000000` (UTC, microseconds, no zone). */
export function novaTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
}

function toAggregate(row: AggregateRow, hosts: string[]): ApiAggregate {
  const metadata = JSON.parse(row.metadata) as Record<string, string>;
  return {
    id: Number(row.id),
    uuid: row.uuid,
    name: row.name,
    availabilityZone: metadata.availability_zone ?? null,
    metadata,
    hosts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Aggregate records (integer ids, unique names) and their hosts, in `compute_aggregate*`. */
export class AggregateStore {
  constructor(private readonly db: Kysely<ComputeResourceTables>) {}

  /** Every aggregate, ordered by id. */
  async list(): Promise<ApiAggregate[]> {
    const rows = await this.db.selectFrom('compute_aggregate').selectAll().orderBy('id').execute();
    const members = await this.db
      .selectFrom('compute_aggregate_host')
      .selectAll()
      .orderBy('host_id')
      .execute();
    return rows.map((r) =>
      toAggregate(
        r,
        members.filter((m) => Number(m.aggregate_id) === Number(r.id)).map((m) => m.host_id),
      ),
    );
  }

  async get(id: number): Promise<ApiAggregate | undefined> {
    const row = await this.db
      .selectFrom('compute_aggregate')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const members = await this.db
      .selectFrom('compute_aggregate_host')
      .select('host_id')
      .where('aggregate_id', '=', id)
      .orderBy('host_id')
      .execute();
    return toAggregate(
      row,
      members.map((m) => m.host_id),
    );
  }

  async byName(name: string): Promise<ApiAggregate | undefined> {
    const row = await this.db
      .selectFrom('compute_aggregate')
      .select('id')
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? this.get(Number(row.id)) : undefined;
  }

  /**
   * Adds an aggregate with the next free id.
   * @returns undefined when the name is taken (the unique index decides)
   */
  async create(
    name: string,
    metadata: Record<string, string>,
    now: number,
  ): Promise<ApiAggregate | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.byName(name)) return undefined;
      const top = await this.db
        .selectFrom('compute_aggregate')
        .select((eb) => eb.fn.max('id').as('top'))
        .executeTakeFirst();
      const id = Number(top?.top ?? 0) + 1;
      try {
        await this.db
          .insertInto('compute_aggregate')
          .values({
            id,
            uuid: randomUUID(),
            name,
            metadata: JSON.stringify(metadata),
            created_at: novaTime(now),
            updated_at: null,
          })
          .execute();
        return this.get(id);
      } catch {
        // The id or the name was taken meanwhile: look again.
      }
    }
    return undefined;
  }

  /** @returns false when the new name is taken by another aggregate */
  async update(
    id: number,
    change: { name?: string; metadata?: Record<string, string> },
    now: number,
  ): Promise<boolean> {
    if (change.name !== undefined) {
      const other = await this.byName(change.name);
      if (other && other.id !== id) return false;
    }
    try {
      await this.db
        .updateTable('compute_aggregate')
        .set({
          ...(change.name !== undefined ? { name: change.name } : {}),
          ...(change.metadata !== undefined ? { metadata: JSON.stringify(change.metadata) } : {}),
          updated_at: novaTime(now),
        })
        .where('id', '=', id)
        .execute();
      return true;
    } catch {
      return false;
    }
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('compute_aggregate_host').where('aggregate_id', '=', id).execute();
    await this.db.deleteFrom('compute_aggregate').where('id', '=', id).execute();
  }

  /** @returns false when the host was a member already */
  async addHost(id: number, hostId: string, now: number): Promise<boolean> {
    const r = await this.db
      .insertInto('compute_aggregate_host')
      .values({ aggregate_id: id, host_id: hostId })
      .onConflict((oc) => oc.columns(['aggregate_id', 'host_id']).doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false;
    await this.touch(id, now);
    return true;
  }

  /** @returns false when the host was not a member */
  async removeHost(id: number, hostId: string, now: number): Promise<boolean> {
    const r = await this.db
      .deleteFrom('compute_aggregate_host')
      .where('aggregate_id', '=', id)
      .where('host_id', '=', hostId)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return false;
    await this.touch(id, now);
    return true;
  }

  private async touch(id: number, now: number): Promise<void> {
    await this.db
      .updateTable('compute_aggregate')
      .set({ updated_at: novaTime(now) })
      .where('id', '=', id)
      .execute();
  }
}
