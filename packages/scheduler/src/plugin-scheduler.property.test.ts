import { type Claim, NoValidHostError, type ServerGroupPolicy } from '@nova-lfs/core';
import { MemoryClaimStore } from '@nova-lfs/core/ports';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createScheduler } from './create-scheduler.js';
import { flavor, host, request, seeded } from './test-fixtures.test-helper.js';

type Op =
  | { kind: 'select'; count: number; vcpus: number; ramMb: number; group: number | null }
  | { kind: 'release'; pick: number }
  | { kind: 'claim'; host: number; vcpus: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('select' as const),
      count: fc.integer({ min: 1, max: 4 }),
      vcpus: fc.integer({ min: 1, max: 6 }),
      ramMb: fc.integer({ min: 128, max: 16_384 }),
      group: fc.option(fc.integer({ min: 0, max: 3 })),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('claim' as const),
      host: fc.nat({ max: 7 }),
      vcpus: fc.integer({ min: 1, max: 8 }),
    }),
    weight: 1,
  },
);

const policies: ServerGroupPolicy[] = ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity'];

describe('scheduler invariants (fast-check)', () => {
  it('never over-allocates, honours hard (anti-)affinity, is all-or-nothing, and releasing restores every host', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            vcpus: fc.integer({ min: 2, max: 16 }),
            ratio: fc.constantFrom(1, 1.5, 4),
            zone: fc.constantFrom('a', 'b'),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(opArb, { maxLength: 60 }),
        fc.constantFrom('spread', 'binpack') as fc.Arbitrary<'spread' | 'binpack'>,
        fc.integer(),
        async (hostSpecs, ops, profile, seed) => {
          const claims = new MemoryClaimStore();
          const s = createScheduler({
            profile,
            claims,
            random: seeded(seed),
            maxInFlightBuilds: 1000,
            maxInstancesPerHost: 1000,
          });
          const hosts = hostSpecs.map((h, i) => {
            const rec = host(`h${i}`, { vcpus: h.vcpus, ramMb: 32_768, availabilityZone: h.zone });
            rec.inventory.VCPU!.allocationRatio = h.ratio;
            s.upsertHost(rec);
            return rec;
          });
          const held: Claim[] = [];
          const groups = new Map<number, Map<string, string>>();
          for (const op of ops) {
            if (op.kind === 'select') {
              const members =
                op.group === null ? undefined : (groups.get(op.group) ?? new Map<string, string>());
              const policy = op.group === null ? undefined : policies[op.group]!;
              const req = request(flavor(op.vcpus, op.ramMb), op.count, {
                ...(members && policy
                  ? { group: { id: `g${op.group}`, policy, memberHostIds: [...members.values()] } }
                  : {}),
              });
              const before = (await claims.list()).length;
              try {
                const sels = await s.select(req);
                expect(sels).toHaveLength(op.count);
                for (const sel of sels) {
                  held.push(sel.claim);
                  members?.set(sel.instanceId, sel.hostId);
                }
                if (members && op.group !== null) groups.set(op.group, members);
                expect((await claims.list()).length).toBe(before + op.count);
              } catch (e) {
                expect(e).toBeInstanceOf(NoValidHostError);
                expect((await claims.list()).length).toBe(before);
              }
            } else if (op.kind === 'release' && held.length) {
              const [claim] = held.splice(op.pick % held.length, 1);
              await s.release(claim!);
              for (const m of groups.values()) m.delete(claim!.instanceId);
            } else if (op.kind === 'claim') {
              const target = hosts[op.host % hosts.length]!;
              const c = await s.claim(target.id, request(flavor(op.vcpus, 256)));
              if (c) held.push(c);
            }
            // capacity and bookkeeping
            for (const h of hosts) {
              const st = s.hostState(h.id)!;
              const cap = Math.floor(h.inventory.VCPU!.total * h.inventory.VCPU!.allocationRatio);
              const sum = held
                .filter((c) => c.hostId === h.id)
                .reduce((a, c) => a + (c.resources.VCPU ?? 0), 0);
              expect(st.used.VCPU ?? 0).toBe(sum);
              expect(sum).toBeLessThanOrEqual(cap);
            }
            // hard group policies
            for (const [g, m] of groups) {
              const hostsUsed = [...m.values()];
              if (policies[g] === 'anti-affinity') expect(new Set(hostsUsed).size).toBe(hostsUsed.length);
              if (policies[g] === 'affinity') expect(new Set(hostsUsed).size).toBeLessThanOrEqual(1);
            }
          }
          for (const c of held) await s.release(c);
          for (const h of hosts) {
            const used = s.hostState(h.id)!.used;
            for (const rc of ['VCPU', 'MEMORY_MB', 'DISK_GB']) expect(used[rc] ?? 0).toBe(0);
            expect(s.hostState(h.id)!.instances.size).toBe(0);
          }
          expect(await claims.list()).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  }, 60_000);
});

describe('concurrent requests', () => {
  it('never double-book a host even when claim persistence is slow', async () => {
    class SlowClaims extends MemoryClaimStore {
      override async add(claim: Claim): Promise<void> {
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        await super.add(claim);
      }
    }
    const claims = new SlowClaims();
    const s = createScheduler({ claims, maxInFlightBuilds: 1000 });
    for (let i = 0; i < 5; i++) s.upsertHost(host(`h${i}`, { vcpus: 7 + i }));
    const capacity = 7 + 8 + 9 + 10 + 11;
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, () => s.select(request(flavor(1, 256)))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(capacity);
    const stored = await claims.list();
    expect(stored).toHaveLength(capacity);
    for (let i = 0; i < 5; i++) {
      expect(stored.filter((c) => c.hostId === `h${i}`)).toHaveLength(7 + i);
      expect(s.hostState(`h${i}`)!.used.VCPU).toBe(7 + i);
    }
  });

  it('lets concurrent alternate claims on one host admit only what fits', async () => {
    const s = createScheduler();
    s.upsertHost(host('h', { vcpus: 4 }));
    const got = await Promise.all(Array.from({ length: 10 }, () => s.claim('h', request(flavor(1, 256)))));
    expect(got.filter(Boolean)).toHaveLength(4);
  });
});
