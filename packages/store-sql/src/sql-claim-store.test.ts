import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Claim,
  ClaimConflictError,
  type Host,
  hostSchema,
  newId,
  type ServerGroupPolicy,
} from '@nova-lfs/core';
import type { ClaimChange, GroupMemberClaim } from '@nova-lfs/core/ports';
import { describe, expect, it } from 'vitest';
import { openPostgresStores, openSqliteStores, type SqlStores } from './open-stores.js';
import { SqlClaimStore } from './sql-claim-store.js';
import { dropSchema, freshSchema, pgUrl, postgresAvailable } from './sql-env.test-helper.js';

const host = (id: string, vcpus = 8): Host =>
  hostSchema.parse({
    id,
    name: id,
    hypervisorType: 'fake',
    inventory: { VCPU: { total: vcpus }, MEMORY_MB: { total: 65_536 } },
  });

function claim(hostId: string, group?: { id: string; policy: ServerGroupPolicy }): Claim | GroupMemberClaim {
  return {
    id: newId(),
    instanceId: newId(),
    hostId,
    resources: { VCPU: 1, MEMORY_MB: 128 },
    createdAt: 0,
    ...(group ? { group } : {}),
  };
}

/**
 * Two stores on one PostgreSQL schema, as two processes open it (two pools); on SQLite one store
 * on a shared file (better-sqlite3 waits for a lock synchronously, so two connections of one
 * process would wait on each other: processes sharing a file are the multi-process tests' job).
 */
async function twoProcesses(dialect: 'sqlite' | 'postgres'): Promise<{
  a: SqlStores;
  b: SqlStores;
  close: () => Promise<void>;
}> {
  if (dialect === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-claims-')), 'db.sqlite');
    const a = await openSqliteStores({ path, shared: true });
    return { a, b: a, close: () => a.close() };
  }
  const schema = freshSchema();
  const a = await openPostgresStores({ url: pgUrl, schema });
  const b = await openPostgresStores({ url: pgUrl, schema });
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
      await dropSchema(schema);
    },
  };
}

/**
 * Reads the feed from `cursor` until `done` holds for what was read (on PostgreSQL a change waits
 * until every older transaction of the cluster ended, another test's included), at most 10 s.
 */
async function readUntil(
  store: SqlClaimStore,
  cursor: string,
  done: (changes: readonly ClaimChange[]) => boolean,
): Promise<{ changes: ClaimChange[]; cursor: string }> {
  const changes: ClaimChange[] = [];
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await store.claimChanges(cursor);
    if (!page) throw new Error('cursor pruned');
    changes.push(...page.changes);
    cursor = page.cursor;
    if (done(changes)) return { changes, cursor };
    if (Date.now() > deadline) throw new Error(`feed incomplete: ${JSON.stringify(changes)}`);
    await new Promise((r) => setImmediate(r));
  }
}

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SqlClaimStore on ${dialect}, shared`, () => {
    it('refuses at claim time a second anti-affinity member on a host, whichever process claims', async () => {
      const { a, b, close } = await twoProcesses(dialect);
      try {
        for (const h of ['h0', 'h1', 'h2']) await a.stores.hosts.upsert(host(h));
        const g = { id: 'web', policy: 'anti-affinity' as const };
        // 12 members race for 3 hosts from two processes: one member per host
        const tries = Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).claims.add(claim(`h${i % 3}`, g)));
        const results = await Promise.allSettled(tries);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
        for (const r of results) {
          if (r.status === 'rejected') {
            expect(r.reason).toBeInstanceOf(ClaimConflictError);
            expect(r.reason.details.reason).toMatch(/^server group web \(anti-affinity\)/);
          }
        }
        const held = await a.claims.list();
        expect(new Set(held.map((c) => c.hostId))).toEqual(new Set(['h0', 'h1', 'h2']));
        // other groups, soft policies and claims without a group are not constrained
        await b.claims.add(claim('h0', { id: 'other', policy: 'anti-affinity' }));
        await b.claims.add(claim('h0', { id: 'soft', policy: 'soft-anti-affinity' }));
        await b.claims.add(claim('h0', { id: 'soft', policy: 'soft-anti-affinity' }));
        await b.claims.add(claim('h0'));
        // a released member's host takes a member again
        const onH0 = held.find((c) => c.hostId === 'h0')!;
        await a.claims.remove(onH0.id);
        await b.claims.add(claim('h0', g));
      } finally {
        await close();
      }
    });

    it('keeps affinity members on one host when processes race for the first member', async () => {
      const { a, b, close } = await twoProcesses(dialect);
      try {
        for (const h of ['h0', 'h1', 'h2', 'h3']) await a.stores.hosts.upsert(host(h));
        const g = { id: 'db', policy: 'affinity' as const };
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claims.add(claim(`h${i % 4}`, g))),
        );
        const won = await a.claims.list();
        expect(won.length).toBe(results.filter((r) => r.status === 'fulfilled').length);
        expect(won.length).toBeGreaterThanOrEqual(1);
        expect(new Set(won.map((c) => c.hostId)).size).toBe(1);
        const refused = await b.claims.add(claim(won[0]!.hostId === 'h0' ? 'h1' : 'h0', g)).catch((e) => e);
        expect(refused).toBeInstanceOf(ClaimConflictError);
      } finally {
        await close();
      }
    });

    it("tells another process's reader what was claimed and released, in order, from a cursor", async () => {
      const { a, b, close } = await twoProcesses(dialect);
      try {
        await a.stores.hosts.upsert(host('h0'));
        const before = claim('h0');
        await a.claims.add(before);
        expect(b.claims.shared).toBe(true);
        const snap = await b.claims.claimSnapshot();
        expect(snap.claims.map((c) => c.id)).toEqual([before.id]);
        const c1 = claim('h0', { id: 'g', policy: 'anti-affinity' });
        await a.claims.add(c1);
        await a.claims.remove(before.id);
        await a.claims.remove(before.id); // nothing removed: no change
        const removedBefore = (cs: readonly ClaimChange[]) =>
          cs.some((c) => c.kind === 'removed' && c.claimId === before.id);
        const page = await readUntil(b.claims, snap.cursor, removedBefore);
        // a change already in the snapshot may come again (appliers are idempotent); the rest
        // come once, in commit order
        const tail = page.changes.slice(
          page.changes.findIndex((c) => c.kind === 'added' && c.claim.id === c1.id),
        );
        expect(tail).toEqual([
          { kind: 'added', claim: c1 },
          { kind: 'removed', claimId: before.id, hostId: 'h0' },
        ]);
        const again = await b.claims.claimChanges(page.cursor);
        expect(
          again!.changes.filter((c) => (c.kind === 'added' ? c.claim.id === c1.id : removedBefore([c]))),
        ).toEqual([]);
      } finally {
        await close();
      }
    });
  });
}

describe.skipIf(!postgresAvailable)('SqlClaimStore feed on PostgreSQL while a transaction is open', () => {
  it('holds back changes committed after an older transaction that is still running, then delivers both', async () => {
    const schema = freshSchema();
    const a = await openPostgresStores({ url: pgUrl, schema });
    const b = await openPostgresStores({ url: pgUrl, schema });
    const pg = (await import('pg')).default;
    const slow = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` });
    await slow.connect();
    try {
      await a.stores.hosts.upsert(host('h0'));
      const { cursor } = await b.claims.claimSnapshot();
      // an older transaction takes an xid and stays open: it writes a change row of its own
      await slow.query('begin');
      await slow.query("insert into claim_changes (claim_id, host_id, data) values ('late', 'h0', null)");
      const c = claim('h0');
      await a.claims.add(c);
      const held = await b.claims.claimChanges(cursor);
      expect(held!.changes).toEqual([]);
      await slow.query('commit');
      const page = await readUntil(b.claims, held!.cursor, (cs) => cs.length >= 2);
      expect(page.changes).toEqual([
        { kind: 'removed', claimId: 'late', hostId: 'h0' },
        { kind: 'added', claim: c },
      ]);
    } finally {
      await slow.end();
      await Promise.all([a.close(), b.close()]);
      await dropSchema(schema);
    }
  });
});

describe('SqlClaimStore feed pruning (SQLite, shared file)', () => {
  it('prunes changes past the retention and tells a reader with an older cursor to reload', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-claims-')), 'db.sqlite');
    const s = await openSqliteStores({ path, shared: true });
    try {
      let now = 0;
      const claims = new SqlClaimStore(s.database, {
        feedRetentionMs: 1_000,
        pruneEveryMs: 0,
        now: () => now,
      });
      await s.stores.hosts.upsert(host('h0'));
      const old = await claims.claimSnapshot();
      const c = claim('h0');
      await claims.add(c);
      now = 2_000;
      const page = await claims.claimChanges(old.cursor);
      expect(page!.changes).toEqual([{ kind: 'added', claim: c }]);
      now = 4_000;
      // due: changes up to the cursor handed out at 2,000 ms and before are pruned
      await claims.add(claim('h0'));
      const fresh = await claims.claimChanges(page!.cursor);
      expect(fresh!.changes).toHaveLength(1);
      expect(await claims.claimChanges(old.cursor)).toBeUndefined();
      const snap = await claims.claimSnapshot();
      expect(snap.claims).toHaveLength(2);
      expect(await claims.claimChanges(snap.cursor)).toEqual({ changes: [], cursor: snap.cursor });
    } finally {
      await s.close();
    }
  });

  it('writes no changes on a file the engine owns alone', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nlfs-claims-')), 'db.sqlite');
    const s = await openSqliteStores({ path });
    try {
      expect(s.claims.shared).toBe(false);
      await s.stores.hosts.upsert(host('h0'));
      const { cursor } = await s.claims.claimSnapshot();
      await s.claims.add(claim('h0'));
      expect((await s.claims.claimChanges(cursor))!.changes).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
