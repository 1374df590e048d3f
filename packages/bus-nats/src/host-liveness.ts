import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Observable, Subject } from 'rxjs';
import { decodeEnvelope } from './envelope.js';
import { BusClosedError, BusSenderMismatchError } from './errors.js';
import { ensureHostsBucket, HOSTS_BUCKET } from './hosts-bucket.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import { toWireError } from './wire-error.js';

/** Why a host's liveness is what it is. */
export type HostLivenessReason =
  /** A valid heartbeat arrived (or was found in the bucket, fresh, at start). */
  | 'beat'
  /** Its last beat is older than `downAfterMs` (its key may have expired with the bucket's TTL). */
  | 'silent'
  /** Its agent deleted its key on a clean stop. */
  | 'deregistered';

/** One host's liveness. */
export interface HostLivenessState {
  readonly hostId: string;
  readonly up: boolean;
  readonly reason: HostLivenessReason;
  /** When its last valid beat was stored, epoch ms; undefined if none was seen. */
  readonly lastBeatAt: number | undefined;
}

/** A host went up or down (`at`: when this process decided it, epoch ms). */
export interface HostLivenessChange extends HostLivenessState {
  readonly at: number;
}

/** Options of {@link HostLiveness}. */
export interface HostLivenessOptions {
  /** A host is down once its last beat is older than this, in ms (default 30,000). */
  readonly downAfterMs?: number;
  /** How often silent hosts are looked for, in ms (default `min(1000, downAfterMs / 4)`). */
  readonly checkIntervalMs?: number;
  /** TTL of the bucket's keys when this process creates it, in ms (default `downAfterMs`). */
  readonly ttlMs?: number;
  /** The hosts bucket (default `nova_hosts`). */
  readonly bucket?: string;
  /** Where refused heartbeats are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

interface Tracked {
  up: boolean;
  reason: HostLivenessReason;
  lastBeatAt: number | undefined;
}

/**
 * The control plane's view of which hosts are up, from the heartbeats in the hosts bucket. The
 * state lives in JetStream KV, so a restarted control plane finds every host that beat within
 * the bucket's TTL without waiting for the next beat. A host is down when its key is deleted (at
 * once) or when its last beat is older than `downAfterMs` (checked every `checkIntervalMs`; on a
 * server without per-key delete markers an expired key is noticed this way too). A heartbeat
 * that fails validation, or whose `sender` is not its key, is refused and logged: it counts as no
 * beat. Hosts never seen are down.
 */
export class HostLiveness {
  private readonly downAfterMs: number;
  private readonly checkIntervalMs: number;
  private readonly ttlMs: number;
  private readonly bucket: string;
  private readonly logger: BusLogger;
  private readonly now: () => number;
  private readonly hostsById = new Map<string, Tracked>();
  private readonly changes = new Subject<HostLivenessChange>();
  private watcher: { stop(): void } | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private initialized = false;
  private stopped = false;

  /**
   * Every up/down change, including each host's state found at `start()` (subscribe before
   * `start()` to see those). Completes on `stop()`.
   */
  readonly changes$: Observable<HostLivenessChange> = this.changes.asObservable();

  constructor(
    private readonly nc: NatsConnection,
    options: HostLivenessOptions = {},
  ) {
    this.downAfterMs = options.downAfterMs ?? 30_000;
    this.checkIntervalMs = options.checkIntervalMs ?? Math.max(10, Math.min(1000, this.downAfterMs / 4));
    this.ttlMs = options.ttlMs ?? this.downAfterMs;
    this.bucket = options.bucket ?? HOSTS_BUCKET;
    this.logger = options.logger ?? consoleBusLogger;
    this.now = options.now ?? Date.now;
  }

  /**
   * Creates or opens the bucket, loads every host's last beat (resolving once they are read, at
   * most 5 s) and then follows changes.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new BusClosedError('HostLiveness.start');
    if (this.watcher) return;
    const kv: KV = await ensureHostsBucket(this.nc, this.ttlMs, this.bucket);
    const stored = (await kv.status()).values;
    const iterator = await kv.watch();
    this.watcher = iterator;
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    if (stored === 0) markReady();
    void (async () => {
      for await (const entry of iterator) {
        this.apply(entry);
        if (entry.delta === 0) markReady();
      }
      if (!this.stopped) this.logger.warn('hosts bucket watch ended', { bucket: this.bucket });
    })();
    const fallback = setTimeout(markReady, 5000);
    await ready;
    clearTimeout(fallback);
    this.initialized = true;
    this.sweep();
    this.sweepTimer = setInterval(() => this.sweep(), this.checkIntervalMs);
  }

  /** Whether `hostId` is up now (false for a host never seen). */
  isUp(hostId: string): boolean {
    return this.hostsById.get(hostId)?.up === true;
  }

  /** `hostId`'s liveness, or undefined for a host never seen. */
  status(hostId: string): HostLivenessState | undefined {
    const t = this.hostsById.get(hostId);
    return t ? { hostId, up: t.up, reason: t.reason, lastBeatAt: t.lastBeatAt } : undefined;
  }

  /** Every host seen, with its liveness. */
  hosts(): HostLivenessState[] {
    return [...this.hostsById.keys()].map((id) => this.status(id) as HostLivenessState);
  }

  /** Stops watching and completes `changes$`. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.stop();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.changes.complete();
  }

  private set(hostId: string, up: boolean, reason: HostLivenessReason, lastBeatAt: number | undefined): void {
    const t = this.hostsById.get(hostId);
    const changed = !t || t.up !== up;
    if (t) {
      t.up = up;
      t.reason = reason;
      t.lastBeatAt = lastBeatAt;
    } else this.hostsById.set(hostId, { up, reason, lastBeatAt });
    if (changed && !this.stopped) this.changes.next({ hostId, up, reason, lastBeatAt, at: this.now() });
  }

  private apply(entry: KvWatchEntry): void {
    const hostId = entry.key;
    if (entry.operation !== 'PUT') {
      this.set(hostId, false, 'deregistered', this.hostsById.get(hostId)?.lastBeatAt);
      return;
    }
    const subject = `$KV.${this.bucket}.${hostId}`;
    try {
      const beat = decodeEnvelope(subject, entry.value, 'heartbeat');
      if (beat.sender !== hostId) throw new BusSenderMismatchError(subject, hostId, beat.sender);
    } catch (e) {
      const wire = toWireError(e);
      this.logger.warn('heartbeat refused', { subject, hostId, code: wire.code, details: wire.details });
      return;
    }
    const now = this.now();
    // A beat read at start is dated by the server's store time; a live one by its arrival.
    const at = this.initialized ? now : Math.min(now, entry.created.getTime());
    const fresh = now - at <= this.downAfterMs;
    this.set(hostId, fresh, fresh ? 'beat' : 'silent', at);
  }

  private sweep(): void {
    const now = this.now();
    for (const [hostId, t] of this.hostsById) {
      if (t.up && t.lastBeatAt !== undefined && now - t.lastBeatAt > this.downAfterMs) {
        this.set(hostId, false, 'silent', t.lastBeatAt);
      }
    }
  }
}
