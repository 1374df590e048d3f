import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type BusBackoff, defaultBusBackoff, ReconnectDelays } from './backoff.js';
import { BusUnavailableError } from './errors.js';

/** How to reach NATS and how to come back after losing it. */
export interface BusConnectionOptions {
  /** Server URLs, e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server's monitoring (e.g. `nova-agent-host1`). */
  readonly name?: string;
  /** User and password of this process (each agent has its own). */
  readonly user?: string;
  readonly pass?: string;
  /** Token authentication, instead of user and password. */
  readonly token?: string;
  /** Prefix of this connection's reply subjects; an agent uses `agentInboxPrefix(hostId)`. */
  readonly inboxPrefix?: string;
  /** Reconnect backoff (exponential with jitter); see {@link defaultBusBackoff}. */
  readonly backoff?: Partial<BusBackoff>;
  /** Reconnect rounds before giving up and closing; -1 (default) never gives up. */
  readonly maxReconnectAttempts?: number;
  /** Time to establish the first connection, in ms (default 5,000). */
  readonly connectTimeoutMs?: number;
  /** Client ping interval, in ms: how soon a silent, half-open connection is noticed (default 10,000). */
  readonly pingIntervalMs?: number;
}

/**
 * Connects to NATS with reconnection on: a lost connection is retried forever (unless
 * `maxReconnectAttempts` says otherwise) with exponential backoff and jitter, reset once
 * reconnected; subscriptions are restored by the client. Throws `BusUnavailableError` when no
 * server answers the first connection (an authentication refusal keeps the client's own error as
 * `cause`).
 */
export async function connectBus(options: BusConnectionOptions): Promise<NatsConnection> {
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  const delays = new ReconnectDelays({ ...defaultBusBackoff, ...options.backoff });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      ...(options.name ? { name: options.name } : {}),
      ...(options.user !== undefined ? { user: options.user, pass: options.pass } : {}),
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.inboxPrefix !== undefined ? { inboxPrefix: options.inboxPrefix } : {}),
      reconnect: true,
      maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
      reconnectDelayHandler: () => delays.next(),
      timeout: options.connectTimeoutMs ?? 5000,
      pingInterval: options.pingIntervalMs ?? 10_000,
      maxPingOut: 2,
    });
  } catch (cause) {
    throw new BusUnavailableError(servers, { cause });
  }
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') delays.reset();
  })();
  return nc;
}
