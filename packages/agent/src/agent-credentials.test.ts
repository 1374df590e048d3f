import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  agentPermissions,
  BusEventSubscriber,
  BusRpcClient,
  connectBus,
  HostLiveness,
} from '@nova-lfs/bus-nats';
import { type NatsTestServer, startNatsServer } from '@nova-lfs/bus-nats/testing';
import { LocalImageService } from '@nova-lfs/core';
import { buildTestInstance, tinyTestFlavor } from '@nova-lfs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingLogger, tempDir, waitFor } from './agent-env.test-helper.js';
import { AgentImageServer } from './agent-image-server.js';
import { RemoteDriver } from './remote-driver.js';
import { type AgentProcess, startAgentProcess } from './testing/index.js';

function natsBinary(): boolean {
  try {
    execFileSync('nats-server', ['--version']);
    return true;
  } catch {
    return false;
  }
}
const binaryAvailable = natsBinary();
if (!binaryAvailable) {
  const reason = 'the nats-server binary is not on PATH (Debian: apt-get install nats-server)';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping agent credential tests: ${reason}`);
}

// Agents as child processes on a nats-server of the test's own, each with its own user limited by
// agentPermissions(hostId): the agent works within them, and refuses to serve with another host's.
describe.skipIf(!binaryAvailable)('agents with their own NATS credentials (own nats-server)', () => {
  let server: NatsTestServer;
  let control: NatsConnection;
  let liveness: HostLiveness;
  const agents: AgentProcess[] = [];
  const dir = binaryAvailable ? tempDir() : '';

  beforeAll(async () => {
    server = await startNatsServer({
      users: [
        { user: 'control', password: 'control-secret' },
        { user: 'agent-ca', password: 'a-secret', ...agentPermissions('cred-a') },
        { user: 'agent-cb', password: 'b-secret', ...agentPermissions('cred-b') },
        { user: 'agent-ci', password: 'i-secret', ...agentPermissions('cred-img') },
      ],
    });
    control = await connectBus({ servers: server.url, user: 'control', pass: 'control-secret' });
    // the control plane creates the hosts bucket (agents may not)
    liveness = new HostLiveness(control, { downAfterMs: 2000, logger: new RecordingLogger() });
    await liveness.start();
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    liveness?.stop();
    await control?.close();
    await server?.dispose();
  });

  it('an agent serves its host within its permissions: RPC, events, heartbeats', async () => {
    const agent = await startAgentProcess({
      hostId: 'cred-a',
      natsUrl: server.url,
      stateDir: join(dir, 'cred-a'),
      heartbeatMs: 200,
      natsUser: 'agent-ca',
      natsPassword: 'a-secret',
    });
    agents.push(agent);
    expect(agent.ready.heartbeating).toBe(true);
    await waitFor(() => liveness.isUp('cred-a'), 5000, 'cred-a up');
    const logger = new RecordingLogger();
    const driver = await RemoteDriver.connect({
      hostId: 'cred-a',
      client: new BusRpcClient(control, { senderId: 'cp-cred', logger }),
      subscriber: new BusEventSubscriber(control, { logger }),
    });
    const instance = buildTestInstance({ hostId: 'cred-a' });
    const image = {
      id: 'img',
      name: 'img',
      diskFormat: 'raw' as const,
      containerFormat: 'bare' as const,
      sha256: 'a'.repeat(64),
      sizeBytes: 1,
      properties: {},
    };
    await driver.spawn({
      instance,
      flavor: tinyTestFlavor,
      image,
      images: {} as never,
      ports: [],
      volumes: [],
    });
    expect((await driver.listInstances()).map((g) => g.instanceId)).toContain(instance.id);
    await driver.destroy(instance);
    await driver.close();
    expect(agent.stderr()).not.toContain('Permissions Violation');
  });

  it("an agent fetches its calls' images over the bus within its permissions (no shared directory)", async () => {
    const agent = await startAgentProcess({
      hostId: 'cred-img',
      natsUrl: server.url,
      stateDir: join(dir, 'cred-img'),
      heartbeatMs: 200,
      natsUser: 'agent-ci',
      natsPassword: 'i-secret',
      extraArgs: ['--fake-acquire-images', '--image-cache', join(dir, 'cred-img-cache')],
    });
    agents.push(agent);
    const logger = new RecordingLogger();
    const imageServer = new AgentImageServer(control, { controlPlaneId: 'cp-cred', logger });
    await imageServer.start();
    const driver = await RemoteDriver.connect({
      hostId: 'cred-img',
      client: new BusRpcClient(control, { senderId: 'cp-cred', logger }),
      subscriber: new BusEventSubscriber(control, { logger }),
      imageServer,
    });
    const images = new LocalImageService(join(dir, 'cp-images'));
    const image = await images.import(
      { id: 'img', name: 'img', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array(300_000).fill(7) },
    );
    const instance = buildTestInstance({ hostId: 'cred-img' });
    await driver.spawn({ instance, flavor: tinyTestFlavor, image, images, ports: [], volumes: [] });
    expect(imageServer.chunksServed(image.sha256)).toBe(2);
    await driver.destroy(instance);
    await driver.close();
    await imageServer.stop();
    expect(agent.stderr()).not.toContain('Permissions Violation');
    expect(logger.records).toEqual([]);
  });

  it('an agent started with another host id than its credentials allow refuses to serve (exit 1)', async () => {
    const wrong = startAgentProcess({
      hostId: 'cred-b',
      natsUrl: server.url,
      stateDir: join(dir, 'wrong'),
      heartbeatMs: 200,
      natsUser: 'agent-ca',
      natsPassword: 'a-secret',
    });
    const err = (await wrong.catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('exited (1)');
    expect(err.message).toContain('NLFS_BUS_PERMISSION_DENIED');
    expect(liveness.isUp('cred-b')).toBe(false);
  });

  it('an agent with a wrong password does not start', async () => {
    const err = (await startAgentProcess({
      hostId: 'cred-b',
      natsUrl: server.url,
      stateDir: join(dir, 'bad-password'),
      natsUser: 'agent-cb',
      natsPassword: 'nope',
    }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('exited (1)');
    expect(err.message).toContain('NLFS_BUS_UNAVAILABLE');
  });
});
