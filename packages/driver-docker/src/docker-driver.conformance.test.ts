import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { DockerDriver } from './docker-driver.js';
import { available, busyboxImages, removeHostContainers } from './docker-env.test-helper.js';

describe.skipIf(!available)('DockerDriver against real dockerd', () => {
  describeDriverConformance(
    'DockerDriver',
    async () => {
      const { images, image } = await busyboxImages();
      const driver = new DockerDriver({ hostId: 'conformance', stopTimeoutSeconds: 2 });
      return {
        driver,
        images,
        image,
        cleanup: async () => {
          await driver.close();
          await removeHostContainers('conformance');
        },
      };
    },
    { timeoutMs: 30_000, unsupportedDiskFormat: 'qcow2' },
  );
});
