import { describe, expect, it } from 'vitest';
import { openPostgresStores } from './open-stores.js';
import { freshStores, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SQL leases on ${dialect}`, () => {
    it('gives a lease to one owner until it expires; the owner renews and releases it', async () => {
      const s = await freshStores(dialect);
      try {
        const { leases } = s.stores;
        expect(await leases.acquire('host:h1', 'a', 1000, 10_000)).toEqual({
          name: 'host:h1',
          owner: 'a',
          expiresAt: 11_000,
        });
        // held: another owner gets the holder back, unchanged
        expect(await leases.acquire('host:h1', 'b', 1000, 10_500)).toEqual({
          name: 'host:h1',
          owner: 'a',
          expiresAt: 11_000,
        });
        // renewed by its owner
        expect(await leases.acquire('host:h1', 'a', 1000, 10_900)).toMatchObject({
          owner: 'a',
          expiresAt: 11_900,
        });
        expect(await leases.acquire('host:h1', 'b', 1000, 11_899)).toMatchObject({ owner: 'a' });
        // expired (at its expiry time): the next owner takes it
        expect(await leases.acquire('host:h1', 'b', 1000, 11_900)).toEqual({
          name: 'host:h1',
          owner: 'b',
          expiresAt: 12_900,
        });
        // a former owner's release does not free it; the holder's does
        await leases.release('host:h1', 'a');
        expect(await leases.acquire('host:h1', 'a', 1000, 12_000)).toMatchObject({ owner: 'b' });
        await leases.acquire('host:h2', 'a', 5000, 12_000);
        expect(await leases.list()).toEqual([
          { name: 'host:h1', owner: 'b', expiresAt: 12_900 },
          { name: 'host:h2', owner: 'a', expiresAt: 17_000 },
        ]);
        await leases.release('host:h1', 'b');
        await leases.release('host:h1', 'b');
        expect(await leases.acquire('host:h1', 'a', 1000, 12_000)).toMatchObject({
          owner: 'a',
          expiresAt: 13_000,
        });
      } finally {
        await s.close();
      }
    });
  });
}

describe.skipIf(!postgresAvailable)('SQL leases on PostgreSQL, two processes', () => {
  it('never gives one name to both of two processes racing for it', async () => {
    const a = await freshStores('postgres');
    const b = await openPostgresStores({ url: pgUrl, schema: a.schema! });
    try {
      const names = Array.from({ length: 20 }, (_, k) => `host:${k}`);
      const now = Date.now();
      const [byA, byB] = await Promise.all([
        Promise.all(names.map((n) => a.stores.leases.acquire(n, 'a', 30_000, now))),
        Promise.all(names.map((n) => b.stores.leases.acquire(n, 'b', 30_000, now))),
      ]);
      for (let k = 0; k < names.length; k++) {
        // both calls answer with the one lease that stands
        expect(byA[k]).toEqual(byB[k]);
        expect(['a', 'b']).toContain(byA[k]!.owner);
      }
      expect(await b.stores.leases.list()).toEqual([...byA].sort((x, y) => (x.name < y.name ? -1 : 1)));
    } finally {
      await b.close();
      await a.close();
    }
  });
});
