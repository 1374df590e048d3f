import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { isNovaError } from '@nova-lfs/core';
import { encodeEnvelope, type HeartbeatEnvelope } from './envelope.js';
import { BusClosedError, BusErrorCode } from './errors.js';
import {
  asBusFailure,
  createOrWaitForHostsBucket,
  HOSTS_BUCKET,
  hostsBucketWaitBackoff,
  openHostsBucket,
} from './hosts-bucket.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import { busIdSchema } from './subjects.js';

/** While waiting for the hosts bucket, a reminder is logged this often (ms). */
const WAIT_LOG_EVERY_MS = 30_000;

/** Options of {@link HeartbeatPublisher}. */
export interface HeartbeatPublisherOptions {
  /** The host this agent serves: the KV key and the `sender` of every beat. */
  readonly hostId: string;
  /** Time between beats, in ms (default 10,000). Keep it well below the control plane's `downAfterMs`. */
  readonly intervalMs?: number;
  /**
   * The hosts bucket (default `nova_hosts`). A control plane creates it; an agent that finds it
   * missing creates it when its credentials allow, else waits for it (`createOrWaitForHostsBucket`).
   */
  readonly bucket?: string;
  /** Where failed beats are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The agent side of liveness: puts a versioned heartbeat under its host id in the hosts bucket
 * every `intervalMs`. A failed beat (e.g. while reconnecting) is logged and the next one is tried
 * on schedule; beats never pile up. When the first beat fails (the bucket does not exist yet: the
 * agent started before any control plane), it creates the bucket or waits for it with backoff in
 * the background and beats as soon as it exists. `stop()` deletes the key by default, so the
 * control plane marks the host down at once instead of after its timeout.
 */
export class HeartbeatPublisher {
  private readonly hostId: string;
  private readonly intervalMs: number;
  private readonly bucket: string;
  private readonly logger: BusLogger;
  private readonly now: () => number;
  private kv: KV | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private inFlight: Promise<void> | undefined;
  private waiting: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private seq = 0;
  private readonly startedAt: number;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    options: HeartbeatPublisherOptions,
  ) {
    this.hostId = busIdSchema.parse(options.hostId);
    this.intervalMs = options.intervalMs ?? 10_000;
    this.bucket = options.bucket ?? HOSTS_BUCKET;
    this.logger = options.logger ?? consoleBusLogger;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** Beats sent successfully so far. */
  get beats(): number {
    return this.seq;
  }

  /** Whether the first beat is still waiting for the hosts bucket to exist. */
  get waitingForBucket(): boolean {
    return this.waiting !== undefined;
  }

  /**
   * Opens the bucket and sends the first beat. When it is stored, schedules the next ones and
   * resolves `true`. When it fails otherwise than by a permission refusal (the bucket is missing,
   * JetStream does not answer yet), resolves `false` and goes on in the background: creates the
   * bucket or waits for it with backoff (100 ms doubling up to `min(intervalMs, 2 s)`), then beats
   * and schedules the next beats. Logs the wait (whether it may create the bucket) after the first
   * attempt that found none, then every 30 s.
   * @throws BusPermissionError when NATS refuses this host's key (credentials of another host);
   *   BusClosedError after `stop()`
   */
  async start(): Promise<boolean> {
    if (this.stopped) throw new BusClosedError('HeartbeatPublisher.start');
    if (this.timer) return true;
    if (this.waiting) return false;
    // A beat that cannot be stored within its interval is late anyway: give up on it and send the
    // next on time (after a reconnect, JetStream may take a moment to answer again).
    const timeoutMs = Math.min(5000, Math.max(250, this.intervalMs));
    this.kv = await openHostsBucket(this.nc, this.bucket, timeoutMs);
    try {
      await this.put();
    } catch (e) {
      if (isNovaError(e, BusErrorCode.PermissionDenied)) throw e;
      this.waiting = this.waitForBucket(e, timeoutMs).finally(() => {
        this.waiting = undefined;
      });
      return false;
    }
    this.schedule();
    return true;
  }

  private async waitForBucket(first: unknown, timeoutMs: number): Promise<void> {
    let loggedAt: number | undefined;
    try {
      this.kv = await createOrWaitForHostsBucket(this.nc, {
        bucket: this.bucket,
        timeoutMs,
        signal: this.abort.signal,
        backoff: {
          ...hostsBucketWaitBackoff,
          maxDelayMs: Math.min(hostsBucketWaitBackoff.maxDelayMs, this.intervalMs),
        },
        onWait: (attempt, error, mayCreate) => {
          if (loggedAt !== undefined && this.now() - loggedAt < WAIT_LOG_EVERY_MS) return;
          loggedAt = this.now();
          this.logger.warn('heartbeat waiting for the hosts bucket', {
            hostId: this.hostId,
            bucket: this.bucket,
            attempts: attempt + 1,
            mayCreate,
            firstError: String(first),
            error: String(error),
          });
        },
      });
      if (this.stopped) return;
      await this.put();
    } catch (e) {
      if (this.stopped) return;
      this.logger.warn('heartbeat not sent', { hostId: this.hostId, error: String(e) });
      // a refused key never beats; anything else is retried on schedule
      if (isNovaError(e, BusErrorCode.PermissionDenied) || isNovaError(e, BusErrorCode.Closed)) return;
    }
    if (!this.stopped) this.schedule();
  }

  private schedule(): void {
    this.timer = setInterval(() => {
      if (this.inFlight) return;
      this.inFlight = this.put()
        .catch((e: unknown) => {
          this.logger.warn('heartbeat not sent', { hostId: this.hostId, error: String(e) });
        })
        .finally(() => {
          this.inFlight = undefined;
        });
    }, this.intervalMs);
  }

  private async put(): Promise<void> {
    const beat: HeartbeatEnvelope = {
      v: 2,
      kind: 'heartbeat',
      id: randomUUID(),
      sender: this.hostId,
      sentAt: this.now(),
      seq: this.seq,
      intervalMs: this.intervalMs,
      startedAt: this.startedAt,
    };
    try {
      await this.kv?.put(this.hostId, encodeEnvelope(beat));
    } catch (e) {
      throw asBusFailure(e);
    }
    this.seq++;
  }

  /**
   * Stops beating. With `deregister` (default true) deletes the host's key so the control plane
   * marks it down at once; without, the host goes down once its beats are older than the timeout
   * (what a crash looks like). Idempotent.
   */
  async stop(options: { deregister?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    await this.waiting;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if ((options.deregister ?? true) && this.kv && !this.nc.isClosed()) {
      await this.kv.delete(this.hostId).catch((e: unknown) => {
        this.logger.warn('heartbeat key not deleted', { hostId: this.hostId, error: String(e) });
      });
    }
  }
}
