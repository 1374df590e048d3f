import { rm } from 'node:fs/promises';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { available, fakeDriver, rawImages } from './hyperv-env.test-helper.js';

describe.skipIf(!available)(
  'HyperVDriver against the FAKE Hyper-V host (sshd + emulated cmdlets, not Hyper-V)',
  () => {
    describeDriverConformance(
      'HyperVDriver (FAKE host)',
      async () => {
        const { images, image, dir: imageDir } = await rawImages();
        const { driver, dir } = await fakeDriver('conformance-hyperv-fake');
        return {
          driver,
          images,
          image,
          hostId: 'conformance-hyperv-fake',
          cleanup: async () => {
            await driver.close();
            await rm(dir, { recursive: true, force: true });
            await rm(imageDir, { recursive: true, force: true });
          },
        };
      },
      { timeoutMs: 30_000, unsupportedDiskFormat: 'qcow2' },
    );
  },
);
