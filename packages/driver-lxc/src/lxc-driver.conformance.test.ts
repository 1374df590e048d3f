import { rm } from 'node:fs/promises';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { LxcDriver } from './lxc-driver.js';
import { available, busyboxImages, removeHostContainers, tempLxcPath } from './lxc-env.test-helper.js';

for (const rootfs of ['copy', 'overlay'] as const) {
  describe.skipIf(!available)(`LxcDriver against real LXC (rootfs: ${rootfs})`, () => {
    describeDriverConformance(
      `LxcDriver (${rootfs})`,
      async () => {
        const { images, image, dir } = await busyboxImages();
        const lxcPath = tempLxcPath();
        const hostId = `conformance-${rootfs}`;
        const driver = new LxcDriver({ hostId, lxcPath, rootfs, stopTimeoutSeconds: 2 });
        return {
          driver,
          images,
          image,
          cleanup: async () => {
            await driver.close();
            await removeHostContainers(lxcPath, hostId);
            await rm(dir, { recursive: true, force: true });
          },
        };
      },
      { timeoutMs: 30_000, unsupportedDiskFormat: 'qcow2' },
    );
  });
}
