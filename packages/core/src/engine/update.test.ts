import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors.js';
import { createFakeCloud } from '../testing/engine-fixture.js';

describe('ComputeEngine.update', () => {
  it('renames and replaces metadata, validates, and refuses unknown instances', async () => {
    const cloud = await createFakeCloud();
    try {
      const [vm] = await cloud.compute.create(cloud.request({ metadata: { a: '1' } }));
      const renamed = await cloud.compute.update(vm!.id, { name: 'renamed' });
      expect(renamed.name).toBe('renamed');
      expect(renamed.metadata).toEqual({ a: '1' });
      expect(renamed.revision).toBe(vm!.revision + 1);
      const meta = await cloud.compute.update(vm!.id, { metadata: { b: '2' } });
      expect((await cloud.compute.get(vm!.id)).metadata).toEqual({ b: '2' });
      expect(meta.name).toBe('renamed');
      await expect(cloud.compute.update(vm!.id, { name: 'bad\u0000name' })).rejects.toMatchObject({
        code: ErrorCode.Validation,
      });
      await expect(
        cloud.compute.update('00000000-0000-4000-8000-000000000000', { name: 'x' }),
      ).rejects.toMatchObject({ code: ErrorCode.NotFound });
    } finally {
      await cloud.compute.close();
    }
  });
});
