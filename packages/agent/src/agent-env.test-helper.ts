import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  agentInboxPrefix,
  BusEventSubscriber,
  type BusLogger,
  BusRpcClient,
  connectBus,
} from '@nova-lfs/bus-nats';
import { defaultNatsUrl, natsAvailable, startNatsCommand } from '@nova-lfs/bus-nats/testing';
import { FakeDriver, type FakeDriverOptions } from '@nova-lfs/core/testing';
import { AgentImageServer } from './agent-image-server.js';
import { AgentService } from './agent-service.js';
import { RemoteDriver } from './remote-driver.js';

/** Whether the shared nats-server answers, decided once per test file. With CI=true a miss is an error. */
export const available = await natsAvailable(defaultNatsUrl);
if (!available) {
  const reason = `nats-server does not answer at ${defaultNatsUrl}; start it with: ${startNatsCommand}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping agent tests: ${reason}`);
}

export { defaultNatsUrl as natsUrl };

/** A host id no other test (or earlier run on the shared server) uses. */
export function uniqueHostId(prefix = 'agent'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A new temporary directory. */
export function tempDir(prefix = 'nlfs-agent-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A logger that keeps what it is told, for assertions. */
export class RecordingLogger implements BusLogger {
  readonly records: Array<{ message: string; fields: Record<string, unknown> }> = [];
  warn(message: string, fields: Record<string, unknown>): void {
    this.records.push({ message, fields });
  }
}

/** A control plane's bus side: connection, RPC client and event subscriber. */
export interface ControlPlaneBus {
  readonly nc: NatsConnection;
  readonly client: BusRpcClient;
  readonly subscriber: BusEventSubscriber;
  /** Serves the artifacts of this control plane's calls to its agents (pass it to `RemoteDriver`). */
  readonly imageServer: AgentImageServer;
  close(): Promise<void>;
}

/** Connects a control plane to the shared server. */
export async function controlPlaneBus(logger: BusLogger = new RecordingLogger()): Promise<ControlPlaneBus> {
  const nc = await connectBus({ servers: defaultNatsUrl, name: 'nova-control-test' });
  const senderId = `cp-${randomUUID().slice(0, 8)}`;
  const client = new BusRpcClient(nc, { senderId, logger });
  const subscriber = new BusEventSubscriber(nc, { logger });
  const imageServer = new AgentImageServer(nc, { controlPlaneId: senderId, logger });
  await imageServer.start();
  return {
    nc,
    client,
    subscriber,
    imageServer,
    async close() {
      await imageServer.stop();
      client.close();
      await nc.close();
    },
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 25 ms until it is true or `timeoutMs` passes (then throws). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** An agent in this process (its own connection, as a separate process would have) with a FAKE driver. */
export interface InProcessAgent {
  readonly hostId: string;
  readonly fake: FakeDriver;
  readonly agent: AgentService;
  /** The control plane's driver for it. */
  readonly driver: RemoteDriver;
  /** Closes the driver, stops the agent and closes its connection. */
  stop(): Promise<void>;
}

/**
 * Starts an {@link AgentService} over a FAKE driver in this process, on its own connection, and
 * connects a {@link RemoteDriver} to it through `bus`. The FAKE drivers of one process can move
 * guests to each other.
 */
export async function startInProcessAgent(
  bus: ControlPlaneBus,
  options: { fake?: FakeDriverOptions; logger?: BusLogger; prefix?: string } = {},
): Promise<InProcessAgent> {
  const hostId = uniqueHostId(options.prefix ?? 'inproc');
  const nc = await connectBus({ servers: defaultNatsUrl, inboxPrefix: agentInboxPrefix(hostId) });
  const fake = new FakeDriver({ hostname: hostId, ...options.fake });
  const agent = new AgentService(nc, {
    hostId,
    driver: fake,
    stateDir: join(tempDir(), hostId),
    heartbeatIntervalMs: 500,
    logger: options.logger ?? new RecordingLogger(),
  });
  await agent.start();
  const driver = await RemoteDriver.connect({
    hostId,
    client: bus.client,
    subscriber: bus.subscriber,
    imageServer: bus.imageServer,
    logger: options.logger ?? new RecordingLogger(),
  });
  return {
    hostId,
    fake,
    agent,
    driver,
    async stop() {
      await driver.close();
      await agent.stop();
      await nc.close();
    },
  };
}
