import { describe, expect, it } from 'vitest';
import { hostSchema } from '../model/host.js';
import type { GroupMemberClaim, PlacementRequest } from '../ports/scheduler.js';
import { FirstFitScheduler } from './first-fit-scheduler.js';

const host = (id: string) =>
  hostSchema.parse({
    id,
    name: id,
    hypervisorType: 'fake',
    inventory: { VCPU: { total: 4 }, MEMORY_MB: { total: 4096 } },
  });

function request(instanceIds: string[], policy: 'anti-affinity' | 'affinity'): PlacementRequest {
  return {
    requestId: 'r',
    projectId: 'p',
    instanceIds,
    flavor: { id: 'f', name: 'f', vcpus: 1, ramMb: 256, diskGb: 0, resources: {}, extraSpecs: {} },
    image: {
      id: 'i',
      name: 'i',
      diskFormat: 'raw',
      containerFormat: 'bare',
      sha256: '0'.repeat(64),
      sizeBytes: 0,
      properties: {},
    },
    hints: {},
    group: { id: 'g', policy, memberHostIds: [] },
  };
}

describe('FirstFitScheduler group claims', () => {
  for (const policy of ['anti-affinity', 'affinity'] as const) {
    it(`checks ${policy} for an alternate against the member claims it holds, not only memberHostIds`, async () => {
      const s = new FirstFitScheduler();
      for (const id of ['a', 'b', 'c']) s.upsertHost(host(id));
      const ids = [crypto.randomUUID(), crypto.randomUUID()];
      const [first, sibling] = await s.select(request(ids, policy));
      expect((first!.claim as GroupMemberClaim).group).toEqual({ id: 'g', policy });
      await s.release(first!.claim);
      const retry = request([first!.instanceId], policy);
      const onSibling = await s.claim(sibling!.hostId, retry);
      const elsewhere = await s.claim(sibling!.hostId === 'c' ? 'b' : 'c', retry);
      if (policy === 'anti-affinity') {
        expect(onSibling).toBeUndefined();
        expect(elsewhere).toBeDefined();
      } else {
        expect(onSibling).toBeDefined();
        expect(elsewhere).toBeUndefined();
      }
    });
  }
});
