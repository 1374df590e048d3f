import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { encodeEnvelope, type HeartbeatEnvelope } from './envelope.js';
import { BusClosedError } from './errors.js';
import { asBusFailure, HOSTS_BUCKET, openHostsBucket } from './hosts-bucket.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import { busIdSchema } from './subjects.js';

/** Options of {@link HeartbeatPublisher}. */
export interface HeartbeatPublisherOptions {
  /** The host this agent serves: the KV key and the `sender` of every beat. */
  readonly hostId: string;
  /** Time between beats, in ms (default 10,000). Keep it well below the control plane's `downAfterMs`. */
  readonly intervalMs?: number;
  /** The hosts bucket (default `nova_hosts`); the control plane creates it. */
  readonly bucket?: string;
  /** Where failed beats are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The agent side of liveness: puts a versioned heartbeat under its host id in the hosts bucket
 * every `intervalMs`. A failed beat (e.g. while reconnecting) is logged and the next one is tried
 * on schedule; beats never pile up. `stop()` deletes the key by default, so the control plane
 * marks the host down at once instead of after its timeout.
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

  /**
   * Opens the bucket, sends the first beat (rejecting with its failure, e.g. `BusPermissionError`)
   * and schedules the next ones.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new BusClosedError('HeartbeatPublisher.start');
    if (this.timer) return;
    // A beat that cannot be stored within its interval is late anyway: give up on it and send the
    // next on time (after a reconnect, JetStream may take a moment to answer again).
    this.kv = await openHostsBucket(this.nc, this.bucket, Math.min(5000, Math.max(250, this.intervalMs)));
    await this.put();
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
