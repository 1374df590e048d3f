import { type Host, NoValidHostError } from '@nova-lfs/core';
import { openPostgresStores, type SqlStores } from '@nova-lfs/store-sql';
import { describe, expect, it } from 'vitest';
import {
  dropSchema,
  freshSchema,
  pgUrl,
  postgresAvailable,
} from '../../store-sql/src/sql-env.test-helper.js';
import { createScheduler } from './create-scheduler.js';
import type { PluginScheduler } from './plugin-scheduler.js';
import { flavor, host, request } from './test-fixtures.test-helper.js';

/** Two schedulers over two pools on one PostgreSQL schema: two processes, as far as the database sees. */
async function twoSchedulers(hosts: readonly Host[]): Promise<{
  a: PluginScheduler;
  b: PluginScheduler;
  stores: SqlStores[];
  close: () => Promise<void>;
}> {
  const schema = freshSchema();
  const stores = [
    await openPostgresStores({ url: pgUrl, schema }),
    await openPostgresStores({ url: pgUrl, schema }),
  ];
  for (const h of hosts) await stores[0]!.stores.hosts.upsert(h);
  const [a, b] = stores.map((s) => {
    const scheduler = createScheduler({ claims: s.claims });
    for (const h of hosts) scheduler.upsertHost(h);
    return scheduler;
  });
  return {
    a: a!,
    b: b!,
    stores,
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(schema);
    },
  };
}

/** Refreshes `s` until `done` holds (a change waits for older transactions of the cluster), at most 10 s. */
async function until(s: PluginScheduler, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('scheduler did not learn the change');
    await s.refresh();
  }
}

describe.skipIf(!postgresAvailable)('a scheduler following a shared claim store (PostgreSQL)', () => {
  it("learns another process's claims and releases from the feed, without reloading every claim", async () => {
    const { a, b, close } = await twoSchedulers([host('h0', { vcpus: 4 }), host('h1', { vcpus: 4 })]);
    try {
      await b.refresh(); // the first read is a snapshot
      const placed = [];
      for (let i = 0; i < 3; i++) placed.push(...(await a.select(request(flavor(1, 256)))));
      const used = (s: PluginScheduler) =>
        (s.hostState('h0')!.used.VCPU ?? 0) + (s.hostState('h1')!.used.VCPU ?? 0);
      await until(b, () => used(b) === 3);
      for (const p of placed) await a.release(p.claim);
      await until(b, () => used(b) === 0);
      expect(b.feedStats!.snapshots).toBe(1);
      expect(b.feedStats!.changes).toBeGreaterThanOrEqual(6);
    } finally {
      await close();
    }
  });

  it('fills what the other process freed: no NoValidHost while the database has room', async () => {
    const { a, b, close } = await twoSchedulers([host('h0', { vcpus: 4 }), host('h1', { vcpus: 4 })]);
    try {
      const fillA = await Promise.all(Array.from({ length: 8 }, () => a.select(request(flavor(1, 256)))));
      // b has not read anything yet: its first decision must see a's claims and find no room
      const full = await b.select(request(flavor(1, 256))).catch((e) => e);
      expect(full).toBeInstanceOf(NoValidHostError);
      for (const [p] of fillA) await a.release(p!.claim);
      // b's view says full; its decisions read the releases first (or reload before refusing)
      const fillB = await Promise.all(Array.from({ length: 8 }, () => b.select(request(flavor(1, 256)))));
      expect(fillB.flat()).toHaveLength(8);
      // and a, which still believes it freed everything, cannot over-commit: the store refuses
      const over = await a.select(request(flavor(1, 256))).catch((e) => e);
      expect(over).toBeInstanceOf(NoValidHostError);
    } finally {
      await close();
    }
  });

  it('never lets two processes put anti-affinity members on one host, alternates included', async () => {
    const hosts = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'].map((id) => host(id));
    const { a, b, close } = await twoSchedulers(hosts);
    try {
      const group = { id: 'web', policy: 'anti-affinity' as const, memberHostIds: [] };
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).select(request(flavor(1, 256), 1, { group }))),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      expect(won).toHaveLength(6);
      expect(new Set(won.map((s) => s.hostId)).size).toBe(6);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NoValidHostError);
      // an alternate claimed with a stale request is refused wherever the member came from
      const taken = won[0]!.hostId;
      const stale = request(flavor(1, 256), 1, { group });
      expect(await a.claim(taken, stale)).toBeUndefined();
      expect(await b.claim(taken, stale)).toBeUndefined();
    } finally {
      await close();
    }
  });
});
