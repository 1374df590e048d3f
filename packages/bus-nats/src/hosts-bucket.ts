import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { abortableDelay } from '@nova-lfs/core/ports';
import { type BusBackoff, backoffDelay } from './backoff.js';
import { BusClosedError, BusPermissionError } from './errors.js';
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

/** Options of {@link createOrWaitForHostsBucket}. */
export interface HostsBucketWaitOptions {
  /** The bucket (default `nova_hosts`). */
  readonly bucket?: string;
  /** Bounds each JetStream request, in ms (default: the connection's timeout). */
  readonly timeoutMs?: number;
  /** Waits between attempts (default 100 ms doubling up to 2 s, ±20 %). */
  readonly backoff?: BusBackoff;
  /** Aborting it ends the wait with `BusClosedError`. */
  readonly signal?: AbortSignal;
  /**
   * Told about every attempt that found no bucket (0-based), with its failure and whether this
   * connection may still create it (false once NATS refused the creation).
   */
  readonly onWait?: (attempt: number, error: unknown, mayCreate: boolean) => void;
}

/** The defaults of {@link HostsBucketWaitOptions.backoff}. */
export const hostsBucketWaitBackoff: BusBackoff = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 2000,
  factor: 2,
  jitter: 0.2,
});

/**
 * An agent's way into a hosts bucket that may not exist yet (an agent started before any control
 * plane): looks the bucket up, and while it is missing creates it when this connection may create
 * streams (history 1, no TTL: liveness is judged by the age of each beat, and a control plane
 * opening the bucket later keeps it as it is), else waits for a control plane to create it,
 * looking again with exponential backoff. Per-agent credentials (`agentPermissions`) allow
 * the lookup but not the creation: such an agent waits.
 * @returns the bucket, once it exists
 * @throws BusClosedError when `signal` aborts or the connection closes; BusPermissionError when
 *   NATS refuses the lookup itself (these credentials can never use the bucket)
 */
export async function createOrWaitForHostsBucket(
  nc: NatsConnection,
  options: HostsBucketWaitOptions = {},
): Promise<KV> {
  const bucket = options.bucket ?? HOSTS_BUCKET;
  const timeout = options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs };
  const js = jetstream(nc, timeout);
  const kvm = new Kvm(js);
  // checkAPI off: an agent may not ask for the account's JetStream info
  const jsm = await jetstreamManager(nc, { ...timeout, checkAPI: false });
  const closed = () => options.signal?.aborted === true || nc.isClosed();
  let mayCreate = true;
  for (let attempt = 0; ; attempt++) {
    if (closed()) throw new BusClosedError('createOrWaitForHostsBucket');
    let error: unknown;
    try {
      await jsm.streams.info(`KV_${bucket}`);
      return await kvm.open(bucket);
    } catch (e) {
      if (classifyNatsFailure(e).kind === 'permission') throw asBusFailure(e);
      error = e;
    }
    if (mayCreate) {
      try {
        return await kvm.create(bucket, { history: 1 });
      } catch (e) {
        // refused: wait for a control plane; anything else (a control plane created it with
        // its TTL meanwhile, a timeout): look it up again
        if (classifyNatsFailure(e).kind === 'permission') mayCreate = false;
        error = e;
      }
    }
    options.onWait?.(attempt, error, mayCreate);
    // an abort cuts the wait short; the next turn then ends with BusClosedError
    await abortableDelay(
      backoffDelay(attempt, options.backoff ?? hostsBucketWaitBackoff),
      options.signal,
    ).catch(() => undefined);
  }
}
