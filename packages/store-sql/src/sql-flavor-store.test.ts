import { createCompute, ErrorCode } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { describe, expect, it } from 'vitest';
import { freshStores, postgresAvailable } from './sql-env.test-helper.js';

const dialects = [
  ['sqlite', true],
  ['postgres', postgresAvailable],
] as const;

for (const [dialect, enabled] of dialects) {
  describe.skipIf(!enabled)(`SqlFlavorStore on ${dialect}`, () => {
    it('replaces a flavor in one statement: readers see old or new specs, never no flavor', async () => {
      const s = await freshStores(dialect);
      try {
        const store = s.stores.flavors!;
        const m1 = { id: 'm1', name: 'm1', vcpus: 1, ramMb: 512, diskGb: 0, extraSpecs: {}, resources: {} };
        await store.add(m1 as never);
        // readers racing the replacement always find the flavor
        const reads = Array.from({ length: 20 }, () => store.get('m1'));
        const replaced = store.replace({
          ...m1,
          extraSpecs: { 'hw:cpu_policy': "dedicated'; drop table flavors;--" },
        } as never);
        const seen = await Promise.all(reads);
        expect(await replaced).toBe(true);
        expect(seen.every((f) => f?.id === 'm1')).toBe(true);
        expect((await store.get('m1'))?.extraSpecs).toEqual({
          'hw:cpu_policy': "dedicated'; drop table flavors;--",
        });
        expect(await store.replace({ ...m1, id: 'nope' } as never)).toBe(false);
        expect(await store.get('nope')).toBeUndefined();
      } finally {
        await s.close();
      }
    });

    it('flavors.setExtraSpecs stores the new specs in one step and names the field of a bad value', async () => {
      const s = await freshStores(dialect);
      const compute = await createCompute({
        stores: s.stores,
        quota: s.quota,
        flavors: [{ id: 'm1', vcpus: 1, ramMb: 512 }],
        hosts: [{ id: 'h0', driver: new FakeDriver({ vcpus: 4, ramMb: 4096 }) }],
      });
      try {
        const next = await compute.flavors.setExtraSpecs('m1', { 'quota:cpu_shares': '512' });
        expect(next.extraSpecs).toEqual({ 'quota:cpu_shares': '512' });
        expect((await compute.flavors.get('m1'))?.extraSpecs).toEqual({ 'quota:cpu_shares': '512' });
        await expect(compute.flavors.setExtraSpecs('m1', { k: 7 as never })).rejects.toMatchObject({
          code: ErrorCode.Validation,
          details: { issues: [{ path: 'extraSpecs.k' }] },
        });
        await expect(compute.flavors.setExtraSpecs('nope', {})).rejects.toMatchObject({
          code: ErrorCode.NotFound,
        });
        // a refused change leaves the stored specs as they were
        expect((await compute.flavors.get('m1'))?.extraSpecs).toEqual({ 'quota:cpu_shares': '512' });
      } finally {
        await compute.close();
        await s.close();
      }
    });
  });
}
