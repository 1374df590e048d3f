import { randomUUID } from 'node:crypto';
import {
  type BusEventSubscriber,
  type BusLogger,
  type BusRpcClient,
  consoleBusLogger,
  type RpcMethod,
} from '@nova-lfs/bus-nats';
import {
  type BlockDevice,
  type ComputeDriver,
  type DriverCallOptions,
  type DriverCapabilities,
  DriverError,
  type DriverErrorDetails,
  type DriverInstance,
  type DriverTimeouts,
  defaultEngineOptions,
  ErrorCode,
  type Flavor,
  type HostReport,
  type Image,
  type ImageService,
  type ImageSource,
  type Instance,
  isNovaError,
  type LocalArtifact,
  type PortBinding,
  type PowerState,
  type PowerStateEvent,
  type SpawnRequest,
} from '@nova-lfs/core';
import {
  abortableDelay,
  type ColdMigratable,
  type ConsoleReadable,
  defineCapabilities,
  type FinishMigrationRequest,
  type ForceCompleteMode,
  type InterfaceAttachable,
  type LiveMigratable,
  type LiveMigrationOptions,
  type LiveMigrationResult,
  type MigratedDisks,
  type MigrationTarget,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Rebuildable,
  type Rescuable,
  type RescueRequest,
  type Snapshottable,
  type Suspendable,
  throwIfCallAborted,
  untilAborted,
  type VolumeAttachable,
} from '@nova-lfs/core/ports';
import { map, type Observable, type Subscription, share } from 'rxjs';
import type { AgentImageServer } from './agent-image-server.js';
import {
  type AgentDescription,
  agentStartedEvent,
  type CallArtifacts,
  driverRpc,
  type ImageArtifact,
  type LinkedArtifact,
  powerStateEvent,
} from './driver-protocol.js';
import { AgentUnreachableError, isTransientBusFailure, toDriverError } from './errors.js';
import { chunkedStream } from './image-chunks.js';
import { IMAGE_TRANSFER_PROTOCOL_REVISION, snapshotRpc } from './image-transfer-protocol.js';
import { INTERFACE_PROTOCOL_REVISION, MOVE_PROTOCOL_REVISION } from './move-protocol.js';
import { type RemoteCallWhat, RemoteMoves } from './remote-moves.js';

/** Options of {@link RemoteDriver}. */
export interface RemoteDriverOptions {
  /** The agent's host id (the subject token `nova.agent.<hostId>`). */
  readonly hostId: string;
  /** The control plane's RPC client. */
  readonly client: BusRpcClient;
  /** The control plane's event subscriber (power events and agent restarts). */
  readonly subscriber: BusEventSubscriber;
  /**
   * RPC deadlines per kind of call, in ms: pass the engine's own `timeouts` (default core's
   * `defaultEngineOptions.timeouts`). The engine's signal still ends a call sooner.
   */
  readonly timeouts?: Partial<DriverTimeouts>;
  /**
   * How long a call keeps resending (same operation id) while the agent is not answering (no
   * responder, lost connection, restarted agent), in ms from the first such failure, within the
   * call's deadline. Default 15,000; then the call fails with a retryable `DriverError`.
   */
  readonly retryWindowMs?: number;
  /** Where failed cancels and releases are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /**
   * This control-plane process's image server: the artifacts of a call are granted to the
   * agent's host while the call runs and the agent fetches them over the bus (`servedBy`).
   * Without it only their paths are sent, which an agent reads only when it shares this
   * machine's image cache directory (`--shared-image-dir`) or is older than revision 4.
   */
  readonly imageServer?: AgentImageServer;
}

type CallKind = keyof DriverTimeouts;

interface Attempt {
  readonly bootId: string;
  readonly reject: (e: Error) => void;
}

/** An attempt abandoned because its agent restarted (it will never be answered): resend it. */
class AgentRestarted extends Error {}

/**
 * The control plane's driver for a host served by a compute agent: every `ComputeDriver`
 * operation (and the optional interfaces the agent reports in its capabilities) is an RPC on
 * `nova.agent.<hostId>.rpc.driver.*`, with the shared schemas of `driver-protocol.ts`.
 *
 * - Deadlines: each call's RPC deadline is its kind's timeout (pass the engine's `timeouts`);
 *   when the engine's `signal` aborts first, the call rejects at once with its reason and the
 *   agent is told to abort the operation (`driver.cancel`).
 * - Idempotency: every guest-changing call has one operation id; it is resent with that id while
 *   the agent does not answer (restart, lost connection), so the agent runs it once.
 * - Errors: a remote `DriverError` arrives as a core `DriverError` with the same `retryable` and
 *   `reschedule`; an unreachable agent is a retryable `DriverError` (another host may help);
 *   running out of time is a core `DeadlineExceededError`.
 * - `events$`: the agent's power-state events (at most once; reconciliation covers gaps).
 * - Images: spawn and rebuild acquire the image from the engine's image service here (verifying
 *   its sha256) when the agent needs bytes, grant it to the agent's host on `imageServer` while
 *   the call runs and send its sha256 and `servedBy`: the agent fetches it over the bus into its
 *   own cache. Snapshots are staged by the agent and read back over the bus (`driver.snapshotRead`;
 *   by path from agents older than revision 4).
 *
 * Build it with {@link RemoteDriver.connect}, which reads the agent's kind and capabilities.
 */
export class RemoteDriver
  implements
    ComputeDriver,
    PowerControl,
    Rebootable,
    Pausable,
    Suspendable,
    Rebuildable,
    Snapshottable,
    ConsoleReadable,
    ColdMigratable,
    LiveMigratable,
    Rescuable,
    VolumeAttachable,
    InterfaceAttachable
{
  readonly kind: string;
  readonly capabilities: DriverCapabilities;
  readonly events$: Observable<PowerStateEvent>;
  readonly hostId: string;
  private readonly client: BusRpcClient;
  private readonly moves: RemoteMoves;
  private readonly timeouts: DriverTimeouts;
  private readonly retryWindowMs: number;
  private readonly logger: BusLogger;
  private readonly needsImageBytes: boolean;
  private readonly imageServer: AgentImageServer | undefined;
  private readonly protocolRevision: number;
  private bootId: string;
  private readonly attempts = new Set<Attempt>();
  private readonly restarts: Subscription;
  private closed = false;
  private down = false;

  /** Use {@link RemoteDriver.connect}; this constructor trusts `description`. */
  constructor(options: RemoteDriverOptions, description: AgentDescription) {
    this.hostId = options.hostId;
    this.client = options.client;
    this.timeouts = { ...defaultEngineOptions.timeouts, ...options.timeouts };
    this.retryWindowMs = options.retryWindowMs ?? 15_000;
    this.logger = options.logger ?? consoleBusLogger;
    this.kind = description.kind;
    this.capabilities = defineCapabilities(servedCapabilities(description));
    this.needsImageBytes = description.needsImageBytes;
    this.imageServer = options.imageServer;
    this.protocolRevision = description.protocolRevision;
    this.bootId = description.bootId;
    this.events$ = options.subscriber.events$(powerStateEvent, { hostId: this.hostId }).pipe(
      map((e) => e.payload),
      share(),
    );
    this.restarts = options.subscriber
      .events$(agentStartedEvent, { hostId: this.hostId })
      .subscribe((e) => this.agentStarted(e.payload.bootId));
    this.moves = new RemoteMoves({
      hostId: this.hostId,
      subscriber: options.subscriber,
      call: (method, payload, kind, what, callOptions) => this.call(method, payload, kind, what, callOptions),
      withArtifacts: (operation, image, images, instance, callOptions, use) =>
        this.withArtifacts(operation, { image, images, instance, ...callOptions }, use),
    });
  }

  /**
   * Describes the agent of `options.hostId` (kind, capabilities, boot id) and returns its driver.
   * Resends while the agent is not answering, up to `retryWindowMs`.
   * @throws AgentUnreachableError when the agent does not answer
   */
  static async connect(options: RemoteDriverOptions): Promise<RemoteDriver> {
    const window = options.retryWindowMs ?? 15_000;
    const end = Date.now() + window;
    for (let attempt = 0; ; attempt++) {
      try {
        const description = await options.client.call(
          options.hostId,
          driverRpc.describe,
          {},
          {
            deadlineMs: Math.max(1000, Math.min(options.timeouts?.read ?? 30_000, end - Date.now())),
          },
        );
        return new RemoteDriver(options, description);
      } catch (e) {
        if (!isTransientBusFailure(e) || Date.now() >= end)
          throw new AgentUnreachableError(options.hostId, { cause: e });
        await abortableDelay(Math.min(2000, 100 * 2 ** attempt), undefined);
      }
    }
  }

  /** The agent's current boot id (changes when it restarts). */
  get agentBootId(): string {
    return this.bootId;
  }

  /** Calls awaiting the agent. */
  get pendingCalls(): number {
    return this.attempts.size;
  }

  private agentStarted(bootId: string): void {
    if (bootId === this.bootId) return;
    this.bootId = bootId;
    for (const a of [...this.attempts]) if (a.bootId !== bootId) a.reject(new AgentRestarted());
  }

  /**
   * The agent's host is down (its heartbeats stopped): every call awaiting it fails now with a
   * retryable `DriverError` instead of at its deadline, and until {@link hostUp} a call its agent
   * does not answer fails at once instead of resending. Called by {@link bindHostLiveness}.
   */
  hostDown(): void {
    this.down = true;
    for (const a of [...this.attempts]) {
      a.reject(
        new DriverError(
          {
            driver: this.kind,
            operation: 'remote call',
            hostId: this.hostId,
            retryable: true,
            reschedule: true,
          },
          `host ${this.hostId} is down (its agent stopped heartbeating)`,
        ),
      );
    }
  }

  /** The agent's host beats again: calls resend while it does not answer (see `retryWindowMs`). */
  hostUp(): void {
    this.down = false;
  }

  /** Whether the host was reported down (calls then fail at once when its agent does not answer). */
  get isDown(): boolean {
    return this.down;
  }

  private async call<P, R>(
    method: RpcMethod<P, R>,
    payload: P,
    kind: CallKind,
    what: RemoteCallWhat,
    options?: DriverCallOptions,
  ): Promise<R> {
    throwIfCallAborted(options);
    const operationId = what.mutating ? (what.operationId ?? randomUUID()) : undefined;
    const signal = options?.signal;
    const timeoutMs = this.timeouts[kind];
    const deadline = Date.now() + timeoutMs;
    const details = {
      driver: this.kind,
      operation: what.operation,
      hostId: this.hostId,
      timeoutMs,
      ...(what.instanceId ? { instanceId: what.instanceId } : {}),
    };
    let onAbort: (() => void) | undefined;
    if (signal && operationId) {
      onAbort = () => this.cancel(operationId, signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    let firstMiss: number | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.closed) throw new DriverError({ ...details, retryable: false }, 'remote driver closed');
        const remaining = deadline - Date.now();
        try {
          return await this.attempt(method, payload, {
            deadlineMs: Math.max(1, remaining),
            ...(operationId ? { operationId } : {}),
            ...(signal ? { signal } : {}),
          });
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          const transient = e instanceof AgentRestarted || isTransientBusFailure(e);
          firstMiss ??= Date.now();
          const retryUntil = Math.min(deadline, firstMiss + this.retryWindowMs);
          if (transient && !this.down && Date.now() < retryUntil) {
            // a restarted agent is resent to at once; an absent one after a short backoff
            if (!(e instanceof AgentRestarted)) {
              await untilAborted(
                abortableDelay(Math.min(1000, 50 * 2 ** attempt, retryUntil - Date.now()), undefined),
                signal,
              );
            }
            continue;
          }
          if (e instanceof DriverError) throw e;
          throw toDriverError(e instanceof AgentRestarted ? new Error('agent restarted') : e, details);
        }
      }
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One RPC attempt, also rejected when the agent restarts or goes down while it waits. */
  private attempt<P, R>(
    method: RpcMethod<P, R>,
    payload: P,
    options: { deadlineMs: number; operationId?: string; signal?: AbortSignal },
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const entry: Attempt = { bootId: this.bootId, reject: (e) => settle(() => reject(e)) };
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        this.attempts.delete(entry);
        fn();
      };
      this.attempts.add(entry);
      this.client.call(this.hostId, method, payload, options).then(
        (r) => settle(() => resolve(r)),
        (e: unknown) => settle(() => reject(e as Error)),
      );
    });
  }

  /** Tells the agent to abort operation `operationId` (best effort, never throws). */
  private cancel(operationId: string, reason: unknown): void {
    const kind = isNovaError(reason, ErrorCode.DeadlineExceeded) ? 'deadline' : 'aborted';
    this.client
      .call(this.hostId, driverRpc.cancel, { operationId, reason: kind }, { deadlineMs: 5000 })
      .catch((e: unknown) => {
        this.logger.warn('remote cancel failed', { hostId: this.hostId, operationId, error: String(e) });
      });
  }

  // ---- ComputeDriver ------------------------------------------------------------------------

  async getHostReport(): Promise<HostReport> {
    return this.call(driverRpc.hostReport, {}, 'read', { operation: 'getHostReport', mutating: false });
  }

  async listInstances(): Promise<DriverInstance[]> {
    const r = await this.call(driverRpc.listInstances, {}, 'read', {
      operation: 'listInstances',
      mutating: false,
    });
    return r.instances;
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    const r = await this.call(driverRpc.powerState, { instance }, 'read', {
      operation: 'getPowerState',
      instanceId: instance.id,
      mutating: false,
    });
    return r.powerState;
  }

  async spawn(request: SpawnRequest): Promise<void> {
    await this.spawnLike(driverRpc.spawn, 'spawn', request);
  }

  async rebuild(request: SpawnRequest): Promise<void> {
    await this.spawnLike(driverRpc.rebuild, 'rebuild', request);
  }

  private async spawnLike(
    method: typeof driverRpc.spawn,
    operation: 'spawn' | 'rebuild',
    request: SpawnRequest,
  ): Promise<void> {
    throwIfCallAborted(request);
    await this.withArtifacts(operation, request, (artifacts) =>
      this.call(
        method,
        {
          instance: request.instance,
          flavor: request.flavor,
          image: request.image,
          ...artifacts,
          ports: [...request.ports],
          volumes: [...request.volumes],
        },
        operation,
        { operation, instanceId: request.instance.id, mutating: true },
        request,
      ),
    );
  }

  /**
   * Runs `use` with the artifacts of the request's image and of the kernel and initrd it names
   * (`kernelImageId`, `ramdiskImageId`) when the agent needs bytes (`{}` otherwise): acquired
   * from the engine's image service (verified), and granted to the agent's host on the image
   * server while `use` runs, so the agent can fetch them over the bus.
   */
  private async withArtifacts<T>(
    operation: string,
    request: Pick<SpawnRequest, 'image' | 'images' | 'instance' | 'signal'>,
    use: (artifacts: CallArtifacts) => Promise<T>,
  ): Promise<T> {
    if (!this.needsImageBytes) return await use({});
    const releases: Array<() => void> = [];
    try {
      return await use(await this.acquire(operation, request, releases));
    } finally {
      for (const release of releases) release();
    }
  }

  /**
   * The engine's verified local artifacts of the request's image and of the kernel and initrd it
   * names, as the agent is told them (their `release` is pushed on `releases`).
   */
  private async acquire(
    operation: string,
    request: Pick<SpawnRequest, 'image' | 'images' | 'instance' | 'signal'>,
    releases: Array<() => void>,
  ): Promise<CallArtifacts> {
    const one = async (id: string) => {
      let local: LocalArtifact;
      try {
        local = await untilAborted(request.images.acquire(id), request.signal);
      } catch (e) {
        throwIfCallAborted(request);
        const bad = isNovaError(e, ErrorCode.ImageChecksum);
        const details = {
          driver: this.kind,
          operation,
          hostId: this.hostId,
          instanceId: request.instance.id,
        };
        throw new DriverError(
          bad ? { ...details, retryable: false, reschedule: false } : details,
          `image ${id}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      if (this.imageServer) releases.push(this.imageServer.grant(this.hostId, local));
      const artifact: ImageArtifact = {
        path: local.path,
        sha256: local.image.sha256,
        sizeBytes: local.image.sizeBytes,
        ...(this.imageServer ? { servedBy: this.imageServer.controlPlaneId } : {}),
      };
      return { image: local.image, artifact };
    };
    const main = await one(request.image.id);
    const linked: LinkedArtifact[] = [];
    for (const key of ['kernelImageId', 'ramdiskImageId'] as const) {
      const id = request.image.properties[key];
      if (!id) continue;
      const { image, artifact } = await one(id);
      linked.push({ image, ...artifact });
    }
    return { artifact: main.artifact, ...(linked.length > 0 ? { linked } : {}) };
  }

  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.destroy, { instance }, 'destroy', this.on('destroy', instance), options);
  }

  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    const payload =
      options?.timeoutMs === undefined ? { instance } : { instance, timeoutMs: options.timeoutMs };
    await this.call(driverRpc.powerOff, payload, 'power', this.on('powerOff', instance), options);
  }

  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.powerOn, { instance }, 'power', this.on('powerOn', instance), options);
  }

  async reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.reboot, { instance, kind }, 'reboot', this.on('reboot', instance), options);
  }

  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.pause, { instance }, 'pause', this.on('pause', instance), options);
  }

  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.unpause, { instance }, 'pause', this.on('unpause', instance), options);
  }

  async suspend(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.suspend, { instance }, 'pause', this.on('suspend', instance), options);
  }

  async resume(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.call(driverRpc.resume, { instance }, 'pause', this.on('resume', instance), options);
  }

  /**
   * The agent captures the guest into a staged file; it is imported here into `options.images`
   * (sha256 checked against the agent's) and then released on the agent.
   */
  async snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image> {
    const staged = await this.call(
      driverRpc.snapshot,
      { instance, name: options.name },
      'snapshot',
      { operation: 'snapshot', instanceId: instance.id, mutating: true },
      options,
    );
    const { image } = staged;
    let imported: Image;
    try {
      imported = await untilAborted(
        options.images.import(
          {
            id: image.id,
            name: image.name,
            diskFormat: image.diskFormat,
            containerFormat: image.containerFormat,
            properties: image.properties,
            sha256: image.sha256,
          },
          this.stagedSource(staged),
        ),
        options.signal,
      );
    } catch (e) {
      throwIfCallAborted(options);
      throw new DriverError(
        {
          driver: this.kind,
          operation: 'snapshot',
          hostId: this.hostId,
          instanceId: instance.id,
          imageId: image.id,
        } as DriverErrorDetails,
        `staged snapshot ${image.id} could not be imported from the agent: ${(e as Error).message}`,
        { cause: e },
      );
    } finally {
      this.client
        .call(this.hostId, driverRpc.snapshotRelease, { imageId: image.id }, { deadlineMs: 10_000 })
        .catch((e: unknown) => {
          this.logger.warn('staged snapshot not released', {
            hostId: this.hostId,
            imageId: image.id,
            error: String(e),
          });
        });
    }
    return imported;
  }

  /**
   * Where a staged snapshot's bytes are read from: over the bus from an agent of revision 4 or
   * later (`driver.snapshotRead`, chunk by chunk; the import verifies the agent's sha256), by
   * path from an older one (it shares this machine).
   */
  private stagedSource(staged: { image: Image; path: string }): ImageSource {
    if (this.protocolRevision < IMAGE_TRANSFER_PROTOCOL_REVISION) return { kind: 'file', path: staged.path };
    const imageId = staged.image.id;
    return {
      kind: 'stream',
      open: () =>
        chunkedStream({
          imageId,
          sizeBytes: staged.image.sizeBytes,
          read: (offset, length) =>
            this.call(snapshotRpc.read, { imageId, offset, length }, 'read', {
              operation: 'snapshotRead',
              mutating: false,
            }),
        }),
    };
  }

  async getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string> {
    const payload = options?.lines === undefined ? { instance } : { instance, lines: options.lines };
    const r = await this.call(driverRpc.consoleOutput, payload, 'read', {
      operation: 'getConsoleOutput',
      instanceId: instance.id,
      mutating: false,
    });
    return r.text;
  }

  // ---- moving and changing instances (driver protocol revision 2, see remote-moves.ts) --------

  prepareColdMigrationTarget(
    instance: Instance,
    flavor: Flavor,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget> {
    return this.moves.prepareColdMigrationTarget(instance, flavor, options);
  }

  migrateDisksAndPowerOff(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<MigratedDisks> {
    return this.moves.migrateDisksAndPowerOff(instance, target, options);
  }

  finishMigration(request: FinishMigrationRequest): Promise<void> {
    return this.moves.finishMigration(request);
  }

  confirmMigration(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.moves.confirmMigration(instance, options);
  }

  revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.moves.revertMigrationOnDestination(instance, options);
  }

  finishRevertMigration(instance: Instance, powerOn: boolean, options?: DriverCallOptions): Promise<void> {
    return this.moves.finishRevertMigration(instance, powerOn, options);
  }

  rescue(request: RescueRequest): Promise<void> {
    return this.moves.rescue(request);
  }

  unrescue(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.moves.unrescue(instance, options);
  }

  prepareLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<MigrationTarget> {
    return this.moves.prepareLiveMigrationTarget(instance, options);
  }

  checkLiveMigration(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<void> {
    return this.moves.checkLiveMigration(instance, target, options);
  }

  liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options?: LiveMigrationOptions,
  ): Promise<LiveMigrationResult> {
    return this.moves.liveMigrate(instance, target, options);
  }

  abortLiveMigration(instance: Instance): Promise<void> {
    return this.moves.abortLiveMigration(instance);
  }

  forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void> {
    return this.moves.forceCompleteLiveMigration(instance, mode);
  }

  rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void> {
    return this.moves.rollbackLiveMigrationTarget(instance, options);
  }

  attachVolume(instance: Instance, device: BlockDevice): Promise<string | undefined> {
    return this.moves.attachVolume(instance, device);
  }

  detachVolume(instance: Instance, device: BlockDevice): Promise<void> {
    return this.moves.detachVolume(instance, device);
  }

  attachInterface(instance: Instance, port: PortBinding): Promise<void> {
    return this.moves.attachInterface(instance, port);
  }

  detachInterface(instance: Instance, port: PortBinding): Promise<void> {
    return this.moves.detachInterface(instance, port);
  }

  /** Stops following the agent's restarts and fails calls still waiting. Guests keep running; the bus stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.restarts.unsubscribe();
    for (const a of [...this.attempts]) {
      a.reject(
        new DriverError(
          { driver: this.kind, operation: 'remote call', hostId: this.hostId, retryable: false },
          'remote driver closed',
        ),
      );
    }
  }

  private on(operation: string, instance: Instance) {
    return { operation, instanceId: instance.id, mutating: true };
  }
}

/** Flags whose operations an agent serves only from {@link MOVE_PROTOCOL_REVISION} on. */
const moveFlags = ['coldMigration', 'rescue', 'liveMigration', 'volumeAttach'] as const;

/**
 * The agent's capabilities as this control plane can use them: an agent of an older driver
 * protocol revision never served the move and change methods, whatever its driver can do, so
 * those flags read as off for it.
 */
function servedCapabilities(description: AgentDescription): AgentDescription['capabilities'] {
  const capabilities = { ...description.capabilities };
  if (description.protocolRevision < MOVE_PROTOCOL_REVISION)
    for (const flag of moveFlags) capabilities[flag] = false;
  if (description.protocolRevision < INTERFACE_PROTOCOL_REVISION) capabilities.interfaceAttach = false;
  return capabilities;
}
