import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';

describe('HostAdmin.setPlacement', () => {
  it('moves a host to another zone and aggregate; the scheduler places by it at once', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    try {
      const placed = await cloud.compute.hosts.setPlacement('host-1', {
        aggregates: [{ id: '7', name: 'fast', metadata: { availability_zone: 'az-fast' } }],
        availabilityZone: 'az-fast',
      });
      expect(placed.availabilityZone).toBe('az-fast');
      expect((await cloud.compute.hosts.get('host-1'))?.aggregates.map((a) => a.name)).toEqual(['fast']);
      const [vm] = await cloud.compute.create(cloud.request({ availabilityZone: 'az-fast' }));
      expect(vm?.hostId).toBe('host-1');
      expect(vm?.availabilityZone).toBe('az-fast');
      // Leaving the aggregate keeps the zone unless one is given.
      const left = await cloud.compute.hosts.setPlacement('host-1', { aggregates: [] });
      expect(left.aggregates).toEqual([]);
      expect(left.availabilityZone).toBe('az-fast');
    } finally {
      await cloud.compute.close();
    }
  });

  it('keeps the zone and aggregates an admin set when the host is refreshed from its driver', async () => {
    const cloud = await createFakeCloud({ hosts: 2 });
    try {
      await cloud.compute.hosts.setPlacement('host-1', {
        aggregates: [{ id: '7', name: 'fast', metadata: {} }],
        availabilityZone: 'az-fast',
      });
      const refreshed = await cloud.compute.refreshHost('host-1');
      expect(refreshed.availabilityZone).toBe('az-fast');
      expect(refreshed.aggregates.map((a) => a.name)).toEqual(['fast']);
      // the scheduler still places by it
      const [vm] = await cloud.compute.create(cloud.request({ availabilityZone: 'az-fast' }));
      expect(vm?.hostId).toBe('host-1');
    } finally {
      await cloud.compute.close();
    }
  });

  it('refuses unknown keys, duplicate aggregate ids and unknown hosts, naming the field', async () => {
    const cloud = await createFakeCloud({ hosts: 1 });
    try {
      const bad = (p: unknown) =>
        cloud.compute.hosts.setPlacement('host-0', p as never).then(
          () => undefined,
          (e: { code: string; details: { issues?: { path: string }[] } }) => e,
        );
      const unknown = await bad({ aggregates: [], up: false });
      expect(unknown?.code).toBe(ErrorCode.Validation);
      const dup = await bad({
        aggregates: [
          { id: '1', name: 'a' },
          { id: '1', name: 'b' },
        ],
      });
      expect(dup?.code).toBe(ErrorCode.Validation);
      expect(dup?.details.issues?.[0]?.path).toBe('aggregates');
      const zone = await bad({ aggregates: [], availabilityZone: 'a\u0000b' });
      expect(zone?.details.issues?.[0]?.path).toBe('availabilityZone');
      await expect(cloud.compute.hosts.setPlacement('nope', { aggregates: [] })).rejects.toMatchObject({
        code: ErrorCode.NotFound,
      });
      expect((await cloud.compute.hosts.get('host-0'))?.availabilityZone).toBe('nova');
    } finally {
      await cloud.compute.close();
    }
  });
});
