import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalImageService } from '@nova-lfs/core';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { importXenGuestImages } from './testing/index.js';
import { XenDriver } from './xen-driver.js';

// Driver logic against libvirt's built-in test hypervisor (accepts type='xen' domains, runs
// nothing): the real libxl run is xen-driver.xen.test.ts.
describeDriverConformance(
  'XenDriver (libvirt test:///default)',
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'nlfs-xen-conf-'));
    const images = new LocalImageService(join(root, 'images'));
    writeFileSync(join(root, 'kernel'), 'not a kernel: the test driver does not read it');
    const { guest } = await importXenGuestImages(images, root, join(root, 'kernel'));
    const driver = new XenDriver({
      uri: 'test:///default',
      hostId: 'xen-conformance',
      stateDir: join(root, 'state'),
      consoleLogDir: join(root, 'console'),
      softRebootTimeoutMs: 1_000,
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
  { timeoutMs: 30_000, unsupportedDiskFormat: 'tar' },
);
