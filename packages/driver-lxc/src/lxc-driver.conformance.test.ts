import { rm } from 'node:fs/promises';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';

describe.skipIf(!available)('LxcDriver against real LXC', () => {
  describeDriverConformance(
    'LxcDriver',
    async () => {
      const { images, image, dir } = await busyboxImages();
      const lxcPath = tempLxcPath();
      const driver = new LxcDriver({ hostId: 'conformance', lxcPath, stopTimeoutSeconds: 2 });
      return {
        driver,
        images,
        image,
        cleanup: async () => {
          await driver.close();
          await removeHostContainers(lxcPath, 'conformance');
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    { timeoutMs: 30_000, unsupportedDiskFormat: 'qcow2' },
  );
});
