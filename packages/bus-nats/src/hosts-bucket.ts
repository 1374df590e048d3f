import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BusPermissionError } from './errors.js';
import { classifyNatsFailure } from './nats-failure.js';

/** The JetStream KV bucket holding one heartbeat per host, keyed by host id. */
export const HOSTS_BUCKET = 'nova_hosts';

/** A permission refusal as `BusPermissionError`; any other failure as it is. */
export function asBusFailure(e: unknown): unknown {
  const failure = classifyNatsFailure(e);
  return failure.kind === 'permission'
    ? new BusPermissionError(failure.subject, failure.operation, { cause: e })
    : e;
}

/**
 * The control plane's access to the hosts bucket: creates it with history 1 and `ttlMs` as the
 * age at which a key silently expires, or opens it if it exists (an existing bucket keeps its
 * own TTL). Needs JetStream on the server.
 */
export async function ensureHostsBucket(
  nc: NatsConnection,
  ttlMs: number,
  bucket = HOSTS_BUCKET,
): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(bucket, { history: 1, ttl: ttlMs });
  } catch (e) {
    // Exists with another configuration (TTL): use it as it is.
    try {
      return await kvm.open(bucket);
    } catch {
      throw e;
    }
  }
}

/**
 * An agent's access to the hosts bucket: opens it (needs publish permission on
 * `$JS.API.STREAM.INFO.KV_<bucket>` and `$KV.<bucket>.<hostId>`). `timeoutMs` bounds each
 * JetStream request made through it (default: the connection's timeout). Throws
 * `BusPermissionError` when the server refuses.
 */
export async function openHostsBucket(
  nc: NatsConnection,
  bucket = HOSTS_BUCKET,
  timeoutMs?: number,
): Promise<KV> {
  try {
    const js = jetstream(nc, timeoutMs === undefined ? {} : { timeout: timeoutMs });
    return await new Kvm(js).open(bucket);
  } catch (e) {
    throw asBusFailure(e);
  }
}
