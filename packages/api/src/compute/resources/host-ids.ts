import type { Kysely } from 'kysely';
import { atLeast, type Microversion } from '../microversion.js';
import { uuidV5 } from './resource-common.js';
import type { ComputeResourceTables } from './resource-tables.js';

/** Integer ids of this process's own services (`nova-conductor`, `nova-scheduler`) below 2.53. */
export const controlServiceNumbers = { 'nova-conductor': 1, 'nova-scheduler': 2 } as const;

/** The hypervisor id of a host: a UUIDv5 of the host id at >= 2.53, its stable integer below. */
export function hypervisorId(hostId: string, num: number, v: Microversion): string | number {
  return atLeast(v, 53) ? uuidV5(`nova-lfs:hypervisor:${hostId}`) : num;
}

/** The `nova-compute` service id of a host (UUID at >= 2.53; integer below, after the control services). */
export function computeServiceId(hostId: string, num: number, v: Microversion): string | number {
  return atLeast(v, 53) ? uuidV5(`nova-lfs:service:nova-compute:${hostId}`) : num + 2;
}

/** The id of one of this process's own services. */
export function controlServiceId(
  binary: keyof typeof controlServiceNumbers,
  v: Microversion,
): string | number {
  return atLeast(v, 53) ? uuidV5(`nova-lfs:service:${binary}`) : controlServiceNumbers[binary];
}

/**
 * Stable integers for hosts (pre-2.53 ids): a host keeps the number it first got; new hosts get
 * the next free one. Concurrent numbering of the same host settles on one row (unique keys).
 */
export class HostNumbers {
  constructor(private readonly db: Kysely<ComputeResourceTables>) {}

  /** The numbers of the given hosts, numbering new ones. */
  async numbersOf(hostIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (hostIds.length === 0) return out;
    const rows = await this.db.selectFrom('compute_host_number').selectAll().execute();
    for (const r of rows) out.set(r.host_id, Number(r.num));
    for (const id of hostIds) {
      if (out.has(id)) continue;
      for (let attempt = 0; attempt < 5; attempt++) {
        const max = await this.db
          .selectFrom('compute_host_number')
          .select((eb) => eb.fn.max('num').as('max'))
          .executeTakeFirst();
        const num = Number(max?.max ?? 0) + 1;
        try {
          await this.db.insertInto('compute_host_number').values({ host_id: id, num }).execute();
          out.set(id, num);
          break;
        } catch {
          const row = await this.db
            .selectFrom('compute_host_number')
            .selectAll()
            .where('host_id', '=', id)
            .executeTakeFirst();
          if (row) {
            out.set(id, Number(row.num));
            break;
          }
        }
      }
    }
    return out;
  }

  /** The host a pre-2.53 number or a 2.53 UUID names, among the given hosts. */
  async hostOf(
    id: string,
    hostIds: readonly string[],
    idOf: (hostId: string, num: number) => string | number,
  ): Promise<string | undefined> {
    const numbers = await this.numbersOf(hostIds);
    for (const hostId of hostIds) {
      const num = numbers.get(hostId)!;
      if (String(idOf(hostId, num)) === id) return hostId;
    }
    return undefined;
  }
}
