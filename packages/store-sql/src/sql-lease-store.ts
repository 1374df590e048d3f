import type { Lease, LeaseStore } from '@nova-lfs/core/ports';
import type { SqlDatabase } from './database.js';
import { PreparedStatement } from './statement.js';

interface LeaseRow {
  name: string;
  owner: string;
  expires_at: number | string;
}

/** Tries of {@link SqlLeaseStore.acquire} when the holder it lost to lets go before it is read. */
const ACQUIRE_TRIES = 5;

/**
 * {@link LeaseStore} on SQL (table `leases`), shared by every process on the database.
 *
 * Taking a lease is one atomic statement: `INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE
 * owner = $owner OR expires_at <= $now RETURNING *` inserts a free lease, renews the caller's own
 * and takes an expired one, and changes nothing while another owner holds it; only then is the
 * holder read. Two processes racing for one name never both get it: the row's lock orders them,
 * and the second sees the first's unexpired lease. `now` is the caller's clock: processes sharing
 * leases need clocks that agree to well within the lease's TTL.
 */
export class SqlLeaseStore implements LeaseStore {
  private readonly acquireStmt;
  private readonly holderStmt;
  private readonly releaseStmt;
  private readonly listStmt;

  constructor(private readonly database: SqlDatabase) {
    const { db } = database;
    this.acquireStmt = PreparedStatement.of<{ name: string; owner: string; expiresAt: number; now: number }>(
      (p) =>
        db
          .insertInto('leases')
          .values({ name: p('name'), owner: p('owner'), expires_at: p('expiresAt') })
          .onConflict((oc) =>
            oc
              .column('name')
              .doUpdateSet((eb) => ({
                owner: eb.ref('excluded.owner'),
                expires_at: eb.ref('excluded.expires_at'),
              }))
              .where((eb) =>
                eb.or([
                  eb('leases.owner', '=', eb.ref('excluded.owner')),
                  eb('leases.expires_at', '<=', p('now')),
                ]),
              ),
          )
          .returning(['name', 'owner', 'expires_at']),
    );
    this.holderStmt = PreparedStatement.of<{ name: string }>((p) =>
      db.selectFrom('leases').select(['name', 'owner', 'expires_at']).where('name', '=', p('name')),
    );
    this.releaseStmt = PreparedStatement.of<{ name: string; owner: string }>((p) =>
      db.deleteFrom('leases').where('name', '=', p('name')).where('owner', '=', p('owner')),
    );
    this.listStmt = PreparedStatement.of<Record<string, never>>(() =>
      db.selectFrom('leases').select(['name', 'owner', 'expires_at']).orderBy('name'),
    );
  }

  /**
   * Takes or renews the lease for `ttlMs` from `now` (epoch ms) if it is free, expired or already
   * `owner`'s; resolves with the lease as it stands (`owner` tells whether this call holds it).
   */
  async acquire(name: string, owner: string, ttlMs: number, now: number): Promise<Lease> {
    for (let attempt = 1; ; attempt++) {
      const taken = await this.database.exec.run<LeaseRow>(
        this.acquireStmt.bind({ name, owner, expiresAt: now + ttlMs, now }),
      );
      if (taken.rows[0]) return leaseOf(taken.rows[0]);
      const held = await this.database.exec.run<LeaseRow>(this.holderStmt.bind({ name }));
      // the holder let go between the two statements: take it again (bounded: it can only repeat
      // while others keep taking and releasing the name)
      if (held.rows[0] || attempt >= ACQUIRE_TRIES) {
        return held.rows[0] ? leaseOf(held.rows[0]) : { name, owner: '', expiresAt: now };
      }
    }
  }

  async release(name: string, owner: string): Promise<void> {
    await this.database.exec.run(this.releaseStmt.bind({ name, owner }));
  }

  async list(): Promise<Lease[]> {
    const { rows } = await this.database.exec.run<LeaseRow>(this.listStmt.bind({}));
    return rows.map(leaseOf);
  }
}

function leaseOf(row: LeaseRow): Lease {
  return { name: row.name, owner: row.owner, expiresAt: Number(row.expires_at) };
}
