import { createCompute, isNovaError } from '@nova-lfs/core';
import { FakeDriver } from '@nova-lfs/core/testing';
import { schedulerFactory } from '@nova-lfs/scheduler';
import { describe, expect, it } from 'vitest';
import { freshStores } from './sql-env.test-helper.js';

describe.each(['sqlite', 'postgres'] as const)('engine races on %s', (dialect) => {
  it('a delete racing an action on one instance always wins (never reports a lost update)', async () => {
    const s = await freshStores(dialect);
    const compute = await createCompute({
      stores: s.stores,
      quota: s.quota,
      scheduler: schedulerFactory(),
      flavors: [{ id: 'm1', vcpus: 1, ramMb: 64 }],
      hosts: [0, 1].map((i) => ({ id: `h${i}`, driver: new FakeDriver({ hostname: `h${i}` }) })),
    });
    try {
      await compute.images.register(
        { id: 'img', name: 'img', diskFormat: 'raw', sha256: 'a'.repeat(64), sizeBytes: 1 },
        { kind: 'bytes', bytes: new Uint8Array([1]) },
      );
      const req = { name: 'r', projectId: 'p', userId: 'u', flavorId: 'm1', imageId: 'img' };
      const failures: string[] = [];
      for (let round = 0; round < 10; round++) {
        const vms = await compute.create({ ...req, count: 8 });
        await Promise.all(
          vms.map(async (vm, i) => {
            const action = i % 2 ? compute.reboot(vm.id, 'hard') : compute.pause(vm.id);
            const [, deleted] = await Promise.allSettled([action, compute.delete(vm.id)]);
            if (deleted.status === 'rejected') {
              failures.push(isNovaError(deleted.reason) ? deleted.reason.code : String(deleted.reason));
            }
          }),
        );
      }
      expect(failures).toEqual([]);
      expect(await compute.list()).toEqual([]);
    } finally {
      await compute.close();
      await s.close();
    }
  });
});
