import { rmSync } from 'node:fs';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe } from 'vitest';
import { KvmDriver } from './kvm-driver.js';
import { available, guestImages, testRoot } from './kvm-env.test-helper.js';

const conformance = (uri: string, hostId: string) =>
  describeDriverConformance(
    `KvmDriver on ${uri}`,
    async () => {
      const root = testRoot();
      const { images, guest } = await guestImages(root);
      const driver = new KvmDriver({ uri, hostId, stateDir: `${root}/state`, softRebootTimeoutMs: 500 });
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

describe.skipIf(!available)('KvmDriver against real libvirtd + QEMU (TCG)', () => {
  conformance('qemu:///system', 'kvm-conformance');
});

// libvirt's in-process test hypervisor: the same driver logic (define, start, managed save,
// events) with no QEMU behind it, so it runs in well under a second per case.
describe.skipIf(!available)("KvmDriver against libvirt's test:///default hypervisor", () => {
  conformance('test:///default', 'kvm-conformance-test');
});
