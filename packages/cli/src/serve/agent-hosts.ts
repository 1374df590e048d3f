import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AgentImageServer, bindHostLiveness, type HostLivenessBinding, RemoteDriver } from '@nova-lfs/agent';
import {
  BusEventSubscriber,
  BusRpcClient,
  connectBus,
  consoleBusLogger,
  HostLiveness,
  type HostLivenessChange,
} from '@nova-lfs/bus-nats';
import type { ComputeEngine, DriverTimeouts, HostBinding } from '@nova-lfs/core';
import { type EvacuatePolicy, startEvacuatePolicy } from './evacuate-policy.js';
import type { ServeOptions } from './serve-options.js';

/** The bus side of a control plane (`serve --bus nats`): one remote driver per agent host. */
export interface AgentHosts {
  /** The engine's hosts: one `RemoteDriver` per `--agent-host`. */
  readonly hosts: HostBinding[];
  /** This control plane's sender id on the bus. */
  readonly senderId: string;
  /**
   * Wires heartbeats to the engine's hosts (down → skipped by the scheduler; up → reconciled),
   * adds the hosts discovered later (without `--agent-host`) and starts the evacuate policy
   * (`--evacuate-after-ms`).
   */
  bind(engine: ComputeEngine): void;
  /** Unbinds, closes the drivers, the liveness watch and the connection. */
  close(): Promise<void>;
}

/**
 * Connects this control plane to NATS and to every `--agent-host` (RPC deadlines: the engine's
 * `timeouts`): each agent must answer its
 * `describe` (within 15 s) for the drivers to exist, so `serve` refuses to start while one is
 * missing. `HostLiveness` reads the `nova_hosts` heartbeat bucket (created if missing). Without
 * `--agent-host` the agents are discovered from that bucket: the hosts up at start are connected
 * now, a host seen up later is connected and added to the engine (`addHost`) once bound.
 */
export async function connectAgentHosts(
  options: ServeOptions,
  timeouts?: Partial<DriverTimeouts>,
): Promise<AgentHosts> {
  const senderId = `cp-${hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 24)}-${process.pid}-${randomUUID().slice(0, 6)}`;
  const nc = await connectBus({
    servers: options.natsUrl,
    name: `nova-lfs-serve ${senderId}`,
    ...(options.natsUser !== undefined ? { user: options.natsUser } : {}),
    ...(options.natsPassword !== undefined ? { pass: options.natsPassword } : {}),
  });
  const client = new BusRpcClient(nc, { senderId });
  const subscriber = new BusEventSubscriber(nc);
  // serves the images of this process's calls to its agents (they fetch them over the bus)
  const imageServer = new AgentImageServer(nc, { controlPlaneId: senderId });
  const liveness = new HostLiveness(nc, {
    downAfterMs: options.hostDownAfterMs,
    checkIntervalMs: Math.max(50, Math.min(1000, Math.floor(options.hostDownAfterMs / 4))),
  });
  const drivers = new Map<string, RemoteDriver>();
  let binding: HostLivenessBinding | undefined;
  let policy: EvacuatePolicy | undefined;
  let discovery: { unsubscribe(): void } | undefined;
  const discover = options.agentHosts.length === 0;
  const close = async () => {
    discovery?.unsubscribe();
    policy?.stop();
    binding?.stop();
    for (const d of drivers.values()) await d.close().catch(() => undefined);
    liveness.stop();
    await imageServer.stop();
    client.close();
    await nc.close().catch(() => undefined);
  };
  try {
    await imageServer.start();
    await liveness.start();
    const initial = discover
      ? liveness
          .hosts()
          .filter((h) => h.up)
          .map((h) => h.hostId)
      : options.agentHosts;
    const connected = await Promise.all(
      initial.map((hostId) =>
        RemoteDriver.connect({ hostId, client, subscriber, imageServer, ...(timeouts ? { timeouts } : {}) }),
      ),
    );
    for (const d of connected) drivers.set(d.hostId, d);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    hosts: [...drivers].map(([id, driver]) => ({ id, driver })),
    senderId,
    bind(engine) {
      binding = bindHostLiveness(engine, liveness, { drivers });
      if (discover) {
        const joining = new Set<string>();
        discovery = liveness.changes$.subscribe((c: HostLivenessChange) => {
          if (!c.up || drivers.has(c.hostId) || joining.has(c.hostId)) return;
          joining.add(c.hostId);
          void (async () => {
            try {
              const driver = await RemoteDriver.connect({
                hostId: c.hostId,
                client,
                subscriber,
                imageServer,
                ...(timeouts ? { timeouts } : {}),
              });
              drivers.set(c.hostId, driver);
              await engine.addHost({ id: c.hostId, driver });
              consoleBusLogger.warn('agent host discovered', { hostId: c.hostId });
            } catch (e) {
              consoleBusLogger.warn('discovered agent host not added', {
                hostId: c.hostId,
                error: String(e),
              });
            } finally {
              joining.delete(c.hostId);
            }
          })();
        });
      }
      if (options.evacuateAfterMs > 0)
        policy = startEvacuatePolicy(engine, liveness.changes$, {
          afterMs: options.evacuateAfterMs,
          logger: consoleBusLogger,
        });
    },
    close,
  };
}
