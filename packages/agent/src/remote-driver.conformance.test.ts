import { join } from 'node:path';
import { LocalImageService } from '@nova-lfs/core';
import { describeDriverConformance } from '@nova-lfs/core/testing';
import { describe, it } from 'vitest';
import { available, controlPlaneBus, natsUrl, tempDir, uniqueHostId } from './agent-env.test-helper.js';
import { RemoteDriver } from './remote-driver.js';
import { startAgentProcess } from './testing/index.js';

// The core driver conformance suite against a RemoteDriver talking over the real nats-server to
// a nova-lfs-agent child process (fake driver reading image bytes, guests in a state file).
if (available) {
  describeDriverConformance('remote driver → agent (fake, child process)', async () => {
    const hostId = uniqueHostId('conf');
    const dir = tempDir();
    const agent = await startAgentProcess({
      hostId,
      natsUrl,
      stateDir: join(dir, 'agent'),
      extraArgs: ['--fake-acquire-images'],
    });
    const bus = await controlPlaneBus();
    const driver = await RemoteDriver.connect({
      hostId,
      client: bus.client,
      subscriber: bus.subscriber,
      imageServer: bus.imageServer,
    });
    const images = new LocalImageService(join(dir, 'images'));
    const image = await images.import(
      { id: 'conformance-image', name: 'conformance-image', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new TextEncoder().encode('a fake disk') },
    );
    return {
      driver,
      images,
      image,
      hostId,
      cleanup: async () => {
        await driver.close();
        await bus.close();
        await agent.stop();
      },
    };
  });
} else {
  describe.skip('remote driver conformance (needs nats-server)', () => it('skipped', () => undefined));
}
