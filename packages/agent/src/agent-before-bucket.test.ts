import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { agentPermissions, connectBus, HOSTS_BUCKET, HostLiveness } from '@nova-lfs/bus-nats';
import { type NatsTestServer, startNatsServer } from '@nova-lfs/bus-nats/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingLogger, tempDir, waitFor } from './agent-env.test-helper.js';
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
  console.warn(`skipping the agent-before-bucket tests: ${reason}`);
}

/** The agents' heartbeat interval: the old retry waited a whole interval between attempts. */
const HEARTBEAT_MS = 10_000;

/** The hosts bucket's stream configuration (JetStream's stream info API), or undefined while it does not exist. */
async function hostsStream(
  nc: NatsConnection,
): Promise<{ config: { max_msgs_per_subject: number; max_age: number } } | undefined> {
  const reply = await nc.request(`$JS.API.STREAM.INFO.KV_${HOSTS_BUCKET}`, '', { timeout: 5000 });
  const info = reply.json<{
    error?: { code: number };
    config?: { max_msgs_per_subject: number; max_age: number };
  }>();
  if (info.error?.code === 404) return undefined;
  if (!info.config) throw new Error(`stream info answered ${reply.string()}`);
  return { config: info.config };
}

// Agents started before any control plane, on a fresh nats-server of the test's own (so no hosts
// bucket exists): they create the bucket when their credentials allow, else wait for a control
// plane to create it, and beat as soon as it exists, not one heartbeat interval later.
describe.skipIf(!binaryAvailable)('an agent started before the hosts bucket exists (own nats-server)', () => {
  let server: NatsTestServer | undefined;
  let control: NatsConnection | undefined;
  let liveness: HostLiveness | undefined;
  const agents: AgentProcess[] = [];
  const dir = binaryAvailable ? tempDir() : '';

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    liveness?.stop();
    await control?.close();
    await server?.dispose();
  });

  it('without per-agent credentials it creates the bucket itself and beats at once', async () => {
    server = await startNatsServer();
    control = await connectBus({ servers: server.url });
    expect(await hostsStream(control)).toBeUndefined();
    const agent = await startAgentProcess({
      hostId: 'early-a',
      natsUrl: server.url,
      stateDir: join(dir, 'early-a'),
      heartbeatMs: HEARTBEAT_MS,
      readyTimeoutMs: 60_000,
    });
    agents.push(agent);
    const readyAt = Date.now();
    // the first beat found no bucket: the agent created it in the background
    expect(agent.ready.heartbeating).toBe(false);
    await waitFor(
      async () => (await hostsStream(control!)) !== undefined,
      5000,
      'the bucket created by the agent',
    );
    const stream = (await hostsStream(control))!;
    expect(stream.config.max_msgs_per_subject).toBe(1);
    // a control plane that comes later opens it as it is and sees the host up
    liveness = new HostLiveness(control, { downAfterMs: 30_000, logger: new RecordingLogger() });
    await liveness.start();
    await waitFor(() => liveness!.isUp('early-a'), 5000, 'early-a up');
    expect(Date.now() - readyAt).toBeLessThan(HEARTBEAT_MS / 2);
    // it never had to wait: the bucket was created at the first attempt
    expect(agent.stderr()).not.toContain('heartbeat waiting for the hosts bucket');
  }, 60_000);

  it('with its own credentials (no right to create streams) it waits for a control plane, then beats within the backoff', async () => {
    server = await startNatsServer({
      users: [
        { user: 'control', password: 'control-secret' },
        { user: 'agent-w', password: 'w-secret', ...agentPermissions('early-w') },
      ],
    });
    control = await connectBus({ servers: server.url, user: 'control', pass: 'control-secret' });
    const agent = await startAgentProcess({
      hostId: 'early-w',
      natsUrl: server.url,
      stateDir: join(dir, 'early-w'),
      heartbeatMs: HEARTBEAT_MS,
      natsUser: 'agent-w',
      natsPassword: 'w-secret',
      readyTimeoutMs: 60_000,
    });
    agents.push(agent);
    expect(agent.ready.heartbeating).toBe(false);
    // it looked the bucket up, was refused creating it, and waits: no bucket yet
    await waitFor(
      () => /heartbeat waiting for the hosts bucket.*"mayCreate":false/.test(agent.stderr()),
      10_000,
      'the agent to report that it waits without creating',
    );
    expect(await hostsStream(control)).toBeUndefined();
    // the control plane creates the bucket (with its TTL); the waiting agent beats within the backoff cap
    liveness = new HostLiveness(control, { downAfterMs: 30_000, logger: new RecordingLogger() });
    const createdAt = Date.now();
    await liveness.start();
    await waitFor(() => liveness!.isUp('early-w'), HEARTBEAT_MS, 'early-w up');
    expect(Date.now() - createdAt).toBeLessThan(HEARTBEAT_MS / 2);
    expect((await hostsStream(control))!.config.max_age).toBe(30_000 * 1_000_000);
    // the agent was never refused: its wait used only the lookup its permissions allow
    expect(agent.stderr()).not.toContain('NLFS_BUS_PERMISSION_DENIED');
  }, 60_000);
});
