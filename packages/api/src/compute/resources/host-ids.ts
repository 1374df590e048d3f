import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ComputeResourceTables } from './resource-tables.js';

/** The ids Nova shows for one compute node or service: an integer (below 2.53) and a uuid. */
export interface NovaIds {
  readonly num: number;
  readonly uuid: string;
}

/** Namespace of the name-based (v5) uuids of hosts and services. */
const namespace = Buffer.from('5b0f1c2e8a4d4f6e9c3b7a1d2e4f6a8b', 'hex');

/** A name-based uuid (RFC 4122 version 5) of `name`: the same name always gives the same uuid. */
export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The key of a host's hypervisor (compute node). */
export const hypervisorKey = (hostId: string) => `hypervisor:${hostId}`;
/** The key of a service (`nova-compute` of a host, `nova-scheduler` of the control plane). */
export const serviceKey = (binary: string, host: string) => `service:${binary}:${host}`;

/**
 * Stable Nova ids for hosts and services, kept in `compute_host_ids`: integers are allocated once
 * per key (the next after the largest of its kind, the part of the key before the first `:`) and
 * survive restarts; the uuid is derived from the key.
 */
export class HostIds {
  constructor(private readonly db: Kysely<ComputeResourceTables>) {}

  /** The ids of every key, allocating those not seen before. */
  async ensure(keys: readonly string[]): Promise<Map<string, NovaIds>> {
    const out = await this.known(keys);
    for (const key of keys) {
      if (out.has(key)) continue;
      out.set(key, await this.allocate(key));
    }
    return out;
  }

  private async known(keys: readonly string[]): Promise<Map<string, NovaIds>> {
    const out = new Map<string, NovaIds>();
    if (keys.length === 0) return out;
    const rows = await this.db.selectFrom('compute_host_ids').selectAll().where('key', 'in', keys).execute();
    for (const r of rows) out.set(r.key, { num: Number(r.num), uuid: r.uuid });
    return out;
  }

  private async allocate(key: string): Promise<NovaIds> {
    for (let attempt = 0; ; attempt++) {
      const kind = key.slice(0, key.indexOf(':'));
      const top = await this.db
        .selectFrom('compute_host_ids')
        .select((eb) => eb.fn.max('num').as('top'))
        .where('kind', '=', kind)
        .executeTakeFirst();
      const num = Number(top?.top ?? 0) + 1;
      try {
        await this.db
          .insertInto('compute_host_ids')
          .values({ key, kind, num, uuid: uuidV5(key) })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
      } catch (e) {
        // Another process took the same number for another key: take the next one.
        if (attempt < 5) continue;
        throw e;
      }
      const row = (await this.known([key])).get(key);
      if (row) return row;
    }
  }
}
