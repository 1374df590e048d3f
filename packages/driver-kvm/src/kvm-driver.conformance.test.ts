import { rmSync } from 'node:fs';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

describe.skipIf(!available)('KvmDriver against real libvirtd + QEMU (TCG)', () => {
  describeDriverConformance(
    'KvmDriver',
    async () => {
      const root = testRoot();
      const { images, guest } = await guestImages(root);
      const driver = new KvmDriver({
        hostId: 'kvm-conformance',
        stateDir: `${root}/state`,
        softRebootTimeoutMs: 500,
      });
      return {
        driver,
        images,
        image: guest,
        cleanup: async () => {
          await driver.close();
          rmSync(root, { recursive: true, force: true });
        },
      };
    },
    { timeoutMs: 60_000, unsupportedDiskFormat: 'tar' },
  );
});
