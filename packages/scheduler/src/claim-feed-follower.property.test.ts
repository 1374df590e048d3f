import { type Claim, ClaimConflictError, capacityOf, DuplicateError, type Host } from '@nova-lfs/core';
import type { ClaimChange, ClaimChangeFeed, ClaimStore, GroupMemberClaim } from '@nova-lfs/core/ports';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createScheduler } from './create-scheduler.js';
import type { PluginScheduler } from './plugin-scheduler.js';
import { flavor, host, request, seeded } from './test-fixtures.test-helper.js';

/**
 * A claim store shared by several schedulers, checking capacity and anti-affinity as the SQL
 * store does, whose feed shows changes only up to `visible` (a PostgreSQL reader does not see
 * changes above the oldest running transaction yet). A snapshot reflects every claim; its cursor
 * is `visible`, so changes already in it are delivered again later.
 */
class LaggingSharedStore implements ClaimStore, ClaimChangeFeed {
  readonly shared = true;
  readonly records = new Map<string, Claim>();
  readonly log: ClaimChange[] = [];
  visible = 0;

  constructor(private readonly hosts: ReadonlyMap<string, Host>) {}

  async add(claim: Claim): Promise<void> {
    if (this.records.has(claim.id)) throw new DuplicateError('claim', claim.id);
    const inventory = this.hosts.get(claim.hostId)!.inventory;
    for (const [rc, amount] of Object.entries(claim.resources)) {
      if (!amount) continue;
      const inv = inventory[rc];
      if (!inv || this.used(claim.hostId, rc) + amount > capacityOf(inv))
        throw new ClaimConflictError(claim.hostId, claim.id, `insufficient ${rc}`);
    }
    const group = (claim as Partial<GroupMemberClaim>).group;
    if (group?.policy === 'anti-affinity') {
      for (const c of this.records.values()) {
        if ((c as Partial<GroupMemberClaim>).group?.id === group.id && c.hostId === claim.hostId)
          throw new ClaimConflictError(claim.hostId, claim.id, 'server group anti-affinity');
      }
    }
    this.records.set(claim.id, claim);
    this.log.push({ kind: 'added', claim });
  }

  async remove(claimId: string): Promise<void> {
    const c = this.records.get(claimId);
    if (!c) return;
    this.records.delete(claimId);
    this.log.push({ kind: 'removed', claimId, hostId: c.hostId });
  }

  async list(): Promise<Claim[]> {
    return [...this.records.values()];
  }

  async claimSnapshot(): Promise<{ claims: Claim[]; cursor: string }> {
    return { claims: [...this.records.values()], cursor: String(this.visible) };
  }

  async claimChanges(cursor: string): Promise<{ changes: ClaimChange[]; cursor: string }> {
    const from = Math.min(Number(cursor), this.visible);
    return { changes: this.log.slice(from, this.visible), cursor: String(Math.max(from, this.visible)) };
  }

  used(hostId: string, rc: string): number {
    let n = 0;
    for (const c of this.records.values()) if (c.hostId === hostId) n += c.resources[rc] ?? 0;
    return n;
  }
}

/** vCPUs per host: small, so that stale views often look full. */
const CAPACITY = 4;

type Op =
  | { kind: 'select'; who: number; vcpus: number; group: boolean }
  | { kind: 'release'; who: number; pick: number }
  | { kind: 'reveal'; upTo: number }
  | { kind: 'refresh'; who: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('select' as const),
      who: fc.nat({ max: 1 }),
      vcpus: fc.integer({ min: 1, max: 3 }),
      group: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('release' as const), who: fc.nat({ max: 1 }), pick: fc.nat() }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('reveal' as const), upTo: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('refresh' as const), who: fc.nat({ max: 1 }) }), weight: 1 },
);

describe('schedulers following a lagging shared claim feed (fast-check)', () => {
  it('never refuse a request the store has room for, and converge on the store once the feed catches up', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 20, maxLength: 100, size: 'max' }),
        fc.integer(),
        async (ops, seed) => {
          const hosts = ['h0', 'h1'].map((id) => host(id, { vcpus: CAPACITY }));
          const store = new LaggingSharedStore(new Map(hosts.map((h) => [h.id, h])));
          const schedulers: PluginScheduler[] = [0, 1].map((i) => {
            const s = createScheduler({ claims: store, random: seeded(seed + i) });
            for (const h of hosts) s.upsertHost(h);
            return s;
          });
          const mine: Claim[][] = [[], []];
          const group = { id: 'g', policy: 'anti-affinity' as const, memberHostIds: [] };
          for (const op of ops) {
            if (op.kind === 'select') {
              const req = request(flavor(op.vcpus, 256), 1, op.group ? { group } : {});
              const room = hosts.some(
                (h) =>
                  store.used(h.id, 'VCPU') + op.vcpus <= CAPACITY &&
                  (!op.group ||
                    ![...store.records.values()].some(
                      (c) => (c as Partial<GroupMemberClaim>).group && c.hostId === h.id,
                    )),
              );
              const placed = await schedulers[op.who]!.select(req).catch(() => undefined);
              expect(placed !== undefined).toBe(room);
              if (placed) mine[op.who]!.push(placed[0]!.claim);
            } else if (op.kind === 'release') {
              const list = mine[op.who]!;
              if (list.length === 0) continue;
              const [c] = list.splice(op.pick % list.length, 1);
              await schedulers[op.who]!.release(c!);
            } else if (op.kind === 'reveal') {
              store.visible = Math.min(
                store.log.length,
                Math.max(store.visible, op.upTo % (store.log.length + 1)),
              );
            } else {
              await schedulers[op.who]!.refresh();
            }
          }
          store.visible = store.log.length;
          for (const s of schedulers) {
            await s.refresh();
            for (const h of hosts) expect(s.hostState(h.id)!.used.VCPU ?? 0).toBe(store.used(h.id, 'VCPU'));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
