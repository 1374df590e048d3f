import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  BusErrorCode,
  type BusEvent,
  BusEventPublisher,
  type BusLogger,
  BusRpcClient,
  BusRpcServer,
  consoleBusLogger,
  HeartbeatPublisher,
  type IdempotencyOptions,
  type RpcContext,
  type RpcMethod,
} from '@nova-lfs/bus-nats';
import {
  BuildAbortedError,
  CapabilityUnsupportedError,
  type ComputeDriver,
  DeadlineExceededError,
  type DriverCallOptions,
  type DriverInstance,
  type Image,
  type ImageService,
  type Instance,
  isNovaError,
  type LocalArtifact,
  LocalImageService,
} from '@nova-lfs/core';
import {
  supportsConsoleOutput,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsRebuild,
  supportsSnapshot,
  supportsSuspend,
} from '@nova-lfs/core/ports';
import type { Subscription } from 'rxjs';
import { AgentImageCache } from './agent-image-cache.js';
import { agentCallImages } from './agent-images.js';
import { registerMoveHandlers, type ServeOptions } from './agent-moves.js';
import {
  type AgentDescription,
  agentStartedEvent,
  type CallArtifacts,
  capabilitiesForVersion,
  DRIVER_PROTOCOL_REVISION,
  describeServed,
  driverRpc,
  type ImageArtifact,
  powerStateEvent,
  type SpawnPayload,
} from './driver-protocol.js';
import { imageFetchFailure } from './errors.js';
import { chunkBytesFor, readFileChunk } from './image-chunks.js';
import { snapshotRpc } from './image-transfer-protocol.js';
import { InstanceLanes } from './instance-lanes.js';
import { migrationProgressEvent } from './move-protocol.js';
import { OperationJournal } from './operation-journal.js';

/** Options of {@link AgentService}. */
export interface AgentServiceOptions {
  /** The host this agent serves (bus host id: `[A-Za-z0-9][A-Za-z0-9_-]{0,63}`). */
  readonly hostId: string;
  /** The agent's driver; the agent owns it and closes it on `stop()`. */
  readonly driver: ComputeDriver;
  /**
   * Whether the driver needs image bytes for spawn and rebuild (Docker: yes; the fake driver only
   * with `acquireImages`). Default: true for every kind but `fake`.
   */
  readonly needsImageBytes?: boolean;
  /**
   * The agent's own directory: the operation journal (`operations.jsonl`), staged snapshots
   * (`snapshots/`) and, unless `imageCacheDir` says otherwise, the image cache (`images/`).
   * Default: a new directory under the system's temporary directory (nothing then survives a
   * restart).
   */
  readonly stateDir?: string;
  /**
   * The agent's own image cache: images fetched from the control plane over the bus (verified
   * against the sha256 it recorded). Default `<stateDir>/images`.
   */
  readonly imageCacheDir?: string;
  /**
   * A directory the agent shares with its control planes (their image cache): an artifact whose
   * path lies under it is read in place instead of fetched. Default: none, every image is fetched.
   */
  readonly sharedImageDir?: string;
  /** Heartbeat interval in ms (default 10,000; keep it well below the control plane's `downAfterMs`). */
  readonly heartbeatIntervalMs?: number;
  /** The hosts bucket (default bus-nats's `nova_hosts`). */
  readonly heartbeatBucket?: string;
  /** Bounds of the in-memory idempotency of the RPC server. */
  readonly idempotency?: IdempotencyOptions;
  /** Where refusals and failures are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/** What {@link AgentService.start} found and announced. */
export interface AgentStartReport {
  readonly bootId: string;
  readonly startedAt: number;
  /** The guests the driver reported at start: the agent re-attached to them (Nomad's RecoverTask). */
  readonly recovered: readonly DriverInstance[];
  /**
   * False when the first heartbeat was not stored (the hosts bucket does not exist yet): the agent
   * creates the bucket or waits for it in the background and beats once it exists.
   */
  readonly heartbeating: boolean;
}

/**
 * The per-host compute service: owns one driver and serves its operations over the bus
 * (`nova.agent.<hostId>.rpc.driver.*`, see `driverRpc`), publishes its power-state events and an
 * `agent.started` event, and heartbeats into the hosts bucket.
 *
 * - Every request is validated by bus-nats against the shared schemas before a handler runs.
 * - Calls on one instance run one at a time; a destroy aborts what runs on its instance first.
 * - Mutating calls are idempotent by operation id: while the agent runs (bus-nats's memory) and
 *   across its restarts (the operation journal in `stateDir`).
 * - At start it asks its driver for its guests and re-attaches to them (the fake driver keeps
 *   them in its state file, Docker in its containers): `listInstances` answers them at once.
 */
export class AgentService {
  readonly hostId: string;
  readonly driver: ComputeDriver;
  readonly bootId = randomUUID();
  private readonly logger: BusLogger;
  private readonly now: () => number;
  private readonly rpc: BusRpcServer;
  private readonly events: BusEventPublisher;
  private readonly heartbeat: HeartbeatPublisher;
  private readonly lanes = new InstanceLanes();
  private readonly journal: OperationJournal;
  private readonly staging: LocalImageService;
  /** The agent's cache of the images its calls run (fetched from the control plane). */
  readonly imageCache: AgentImageCache;
  private readonly imageClient: BusRpcClient;
  private readonly nc: NatsConnection;
  private readonly needsImageBytes: boolean;
  private readonly heartbeatIntervalMs: number;
  private powerEvents: Subscription | undefined;
  private startedAt = 0;
  private state: 'new' | 'started' | 'stopped' = 'new';

  constructor(nc: NatsConnection, options: AgentServiceOptions) {
    this.hostId = options.hostId;
    this.driver = options.driver;
    this.logger = options.logger ?? consoleBusLogger;
    this.now = options.now ?? Date.now;
    this.needsImageBytes = options.needsImageBytes ?? options.driver.kind !== 'fake';
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    const stateDir = options.stateDir ?? join(tmpdir(), `nova-lfs-agent-${options.hostId}-${this.bootId}`);
    mkdirSync(stateDir, { recursive: true });
    this.journal = new OperationJournal(join(stateDir, 'operations.jsonl'), { now: this.now });
    this.staging = new LocalImageService(join(stateDir, 'snapshots'));
    this.nc = nc;
    this.imageClient = new BusRpcClient(nc, { senderId: options.hostId, logger: this.logger, now: this.now });
    this.imageCache = new AgentImageCache({
      dir: options.imageCacheDir ?? join(stateDir, 'images'),
      client: this.imageClient,
      ...(options.sharedImageDir !== undefined ? { sharedDir: options.sharedImageDir } : {}),
    });
    this.rpc = new BusRpcServer(nc, {
      hostId: options.hostId,
      logger: this.logger,
      now: this.now,
      ...(options.idempotency ? { idempotency: options.idempotency } : {}),
    });
    this.events = new BusEventPublisher(nc, { hostId: options.hostId, now: this.now });
    this.heartbeat = new HeartbeatPublisher(nc, {
      hostId: options.hostId,
      intervalMs: this.heartbeatIntervalMs,
      logger: this.logger,
      now: this.now,
      ...(options.heartbeatBucket ? { bucket: options.heartbeatBucket } : {}),
    });
    this.register();
  }

  /** Instances with driver calls queued or running now. */
  get busyInstances(): number {
    return this.lanes.busyInstances;
  }

  /** What this agent reports about itself (`driver.describe`). */
  describe(): AgentDescription {
    return {
      hostId: this.hostId,
      kind: this.driver.kind,
      capabilities: { ...this.driver.capabilities },
      needsImageBytes: this.needsImageBytes,
      bootId: this.bootId,
      startedAt: this.startedAt,
      protocolRevision: DRIVER_PROTOCOL_REVISION,
    };
  }

  /**
   * Re-attaches to the driver's guests, starts serving RPC, forwards power events, starts
   * heartbeats (when the hosts bucket does not exist yet, the agent creates it or waits for it
   * with backoff in the background: `heartbeating` is then false) and announces `agent.started`.
   * @throws whatever the driver's `listInstances` / `getHostReport` throw (an unusable driver);
   *   `BusPermissionError` when NATS refuses this host's heartbeat key (credentials of another
   *   host): the agent then serves nothing
   */
  async start(): Promise<AgentStartReport> {
    if (this.state !== 'new') throw new Error(`agent ${this.hostId} was already started`);
    this.state = 'started';
    this.startedAt = this.now();
    // A driver that cannot report its host must not take calls (Docker checks its scope here).
    await this.driver.getHostReport();
    const recovered = await this.driver.listInstances();
    this.powerEvents = this.driver.events$.subscribe((e) => this.publish(powerStateEvent, e));
    await this.rpc.start();
    let heartbeating = false;
    try {
      // false: the hosts bucket is missing (no control plane yet); the publisher creates it or
      // waits for it in the background and beats as soon as it exists
      heartbeating = await this.heartbeat.start();
    } catch (e) {
      if (isNovaError(e, BusErrorCode.PermissionDenied)) {
        // these credentials are not this host's: serve nothing
        await this.stop({ deregister: false });
        throw e;
      }
      this.logger.warn('heartbeat not started', { hostId: this.hostId, error: String(e) });
    }
    this.events.publish(agentStartedEvent, {
      bootId: this.bootId,
      startedAt: this.startedAt,
      kind: this.driver.kind,
      recovered: recovered.length,
    });
    await this.events.flush();
    return { bootId: this.bootId, startedAt: this.startedAt, recovered, heartbeating };
  }

  /**
   * Stops serving (running calls are aborted), stops heartbeats (deleting the host's key unless
   * `deregister: false`, so the control plane marks the host down at once) and closes the
   * driver. Guests keep running. Does not close the connection. Idempotent.
   */
  async stop(options: { deregister?: boolean } = {}): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.powerEvents?.unsubscribe();
    await this.rpc.stop();
    this.imageClient.close();
    await this.heartbeat.stop(options);
    await this.driver.close?.();
  }

  // ---- handlers -------------------------------------------------------------------------------

  private register(): void {
    const d = this.driver;
    // a v1 control plane reads only the capability flags of its time (its schema is strict)
    this.rpc.handle(describeServed, (_, ctx) => {
      const d = this.describe();
      return { ...d, capabilities: capabilitiesForVersion(d.capabilities, ctx.version) };
    });
    this.rpc.handle(driverRpc.hostReport, () => d.getHostReport());
    this.rpc.handle(driverRpc.listInstances, async () => ({ instances: await d.listInstances() }));
    this.rpc.handle(driverRpc.powerState, async ({ instance }) => ({
      powerState: await d.getPowerState(instance),
    }));
    this.rpc.handle(driverRpc.cancel, ({ operationId, reason }, ctx) => ({
      cancelled: this.lanes.cancel(
        operationId,
        reason === 'deadline'
          ? new DeadlineExceededError({ operation: 'remote call', timeoutMs: 0, hostId: ctx.hostId })
          : new BuildAbortedError(operationId),
      ),
    }));

    this.mutating(driverRpc.spawn, async (p, o) => d.spawn(await this.spawnRequest(p, o)));
    registerMoveHandlers({
      driver: d,
      serve: (method, work, options) => this.serve(method, work, options),
      callImages: (image, instance, artifacts, signal) => this.callImages(image, instance, artifacts, signal),
      publishProgress: (payload) => this.publish(migrationProgressEvent, payload),
      unsupported: (capability) => this.unsupported(capability),
    });
    this.mutating(driverRpc.rebuild, async (p, o) => {
      if (!supportsRebuild(d)) throw this.unsupported('rebuild');
      return d.rebuild(await this.spawnRequest(p, o));
    });
    this.mutating(driverRpc.destroy, (p, o) => d.destroy(p.instance, o), { preempt: true });
    this.mutating(driverRpc.powerOff, (p, o) => {
      if (!supportsPowerControl(d)) throw this.unsupported('powerControl');
      return d.powerOff(p.instance, {
        ...o,
        ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
      });
    });
    this.mutating(driverRpc.powerOn, (p, o) => {
      if (!supportsPowerControl(d)) throw this.unsupported('powerControl');
      return d.powerOn(p.instance, o);
    });
    this.mutating(driverRpc.reboot, (p, o) => {
      if (!supportsReboot(d)) throw this.unsupported('reboot');
      return d.reboot(p.instance, p.kind, o);
    });
    this.mutating(driverRpc.pause, (p, o) => {
      if (!supportsPause(d)) throw this.unsupported('pause');
      return d.pause(p.instance, o);
    });
    this.mutating(driverRpc.unpause, (p, o) => {
      if (!supportsPause(d)) throw this.unsupported('pause');
      return d.unpause(p.instance, o);
    });
    this.mutating(driverRpc.suspend, (p, o) => {
      if (!supportsSuspend(d)) throw this.unsupported('suspend');
      return d.suspend(p.instance, o);
    });
    this.mutating(driverRpc.resume, (p, o) => {
      if (!supportsSuspend(d)) throw this.unsupported('suspend');
      return d.resume(p.instance, o);
    });
    this.rpc.handle(driverRpc.snapshot, (p, ctx) =>
      this.onInstance(p.instance, ctx, false, async (signal) => {
        if (!supportsSnapshot(d)) throw this.unsupported('snapshot');
        const image = await d.snapshot(p.instance, {
          signal,
          name: p.name,
          images: agentCallImages(this.staging, undefined),
        });
        const staged = await this.staging.acquire(image.id);
        return { image: staged.image, path: staged.path };
      }),
    );
    // revision 4: the control plane reads the staged snapshot over the bus (only staged ones)
    this.rpc.handle(snapshotRpc.read, async ({ imageId, offset, length }) => {
      const staged = await this.staging.acquire(imageId);
      return readFileChunk(staged.path, offset, Math.min(length, chunkBytesFor(this.nc.info?.max_payload)));
    });
    this.rpc.handle(driverRpc.snapshotRelease, async ({ imageId }) => {
      await this.staging.remove(imageId);
      return {};
    });
    this.rpc.handle(driverRpc.consoleOutput, async (p) => {
      if (!supportsConsoleOutput(d)) throw this.unsupported('consoleOutput');
      return { text: await d.getConsoleOutput(p.instance, p.lines === undefined ? {} : { lines: p.lines }) };
    });
  }

  private unsupported(capability: string): CapabilityUnsupportedError {
    return new CapabilityUnsupportedError(capability, this.driver.kind, this.hostId);
  }

  private async spawnRequest(p: SpawnPayload, o: DriverCallOptions) {
    return {
      ...o,
      instance: p.instance,
      flavor: p.flavor,
      image: p.image,
      ports: p.ports,
      volumes: p.volumes,
      images: await this.callImages(p.image, p.instance, p, o.signal),
    };
  }

  /**
   * The image service of one call: `image` (and its kernel and initrd) are fetched into the
   * agent's cache (or found there) before the driver runs, so a fetch failure is the agent's own
   * `DriverError` naming the image (see `imageFetchFailure`), whatever the driver would make of it.
   */
  private async callImages(
    image: Image,
    instance: Instance,
    artifacts: CallArtifacts,
    signal: AbortSignal | undefined,
  ): Promise<ImageService> {
    const details = {
      driver: this.driver.kind,
      operation: 'image fetch',
      hostId: this.hostId,
      instanceId: instance.id,
    };
    const wanted: Array<[Image, ImageArtifact]> = [
      ...(artifacts.artifact ? [[image, artifacts.artifact] as [Image, ImageArtifact]] : []),
      ...(artifacts.linked ?? []).map((l): [Image, ImageArtifact] => [l.image, l]),
    ];
    const ready = new Map<string, LocalArtifact>();
    await Promise.all(
      wanted.map(async ([img, artifact]) => {
        try {
          ready.set(img.id, await this.imageCache.acquire(img, artifact, signal));
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          throw imageFetchFailure(e, { ...details, imageId: img.id, servedBy: artifact.servedBy });
        }
      }),
    );
    return agentCallImages(this.staging, {
      image,
      linked: (artifacts.linked ?? []).map((l) => l.image),
      ready,
      driver: this.driver.kind,
      hostId: this.hostId,
      instanceId: instance.id,
    });
  }

  private publish<P>(event: BusEvent<P>, payload: P): void {
    try {
      this.events.publish(event, payload);
    } catch (err) {
      this.logger.warn('event not published', { hostId: this.hostId, type: event.type, error: String(err) });
    }
  }

  /** A guest-changing lifecycle method: per-instance lane, journaled by operation id, result `{}`. */
  private mutating<P extends { instance: Instance }>(
    method: RpcMethod<P, Record<string, never>>,
    call: (payload: P, options: DriverCallOptions) => Promise<void>,
    options: { preempt?: boolean } = {},
  ): void {
    this.serve(
      method,
      async (payload, o) => {
        await call(payload, o);
        return {};
      },
      options,
    );
  }

  /**
   * Serves a method on one instance. On its lane unless `lane: false` (calls on one instance run
   * one at a time; `preempt` aborts them first). Journaled unless `journal: false`: a call with an
   * operation id that already succeeded (in this run or, from the journal, an earlier one) answers
   * its recorded result without running again.
   */
  private serve<P extends { instance: Instance }, R>(
    method: RpcMethod<P, R>,
    work: (payload: P, options: DriverCallOptions, ctx: RpcContext) => Promise<R>,
    options: ServeOptions & { preempt?: boolean } = {},
  ): void {
    const lane = options.lane ?? true;
    const journal = options.journal ?? true;
    this.rpc.handle(method, async (payload, ctx) => {
      const op = journal ? ctx.operationId : undefined;
      const found = op ? this.journal.find(method.name, op) : undefined;
      if (found) return found.result as R;
      const run = (signal: AbortSignal) => work(payload, { signal }, ctx);
      const result = lane
        ? await this.onInstance(payload.instance, ctx, options.preempt ?? false, run)
        : await run(ctx.signal);
      if (op) this.journal.record(method.name, op, result);
      return result;
    });
  }

  private onInstance<T>(
    instance: Instance,
    ctx: RpcContext,
    preempt: boolean,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return this.lanes.run(instance.id, { signal: ctx.signal, operationId: ctx.operationId, preempt }, work);
  }
}
