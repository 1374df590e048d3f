import { Observable, Subject } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import {
  actionStoreToken,
  claimStoreToken,
  clockToken,
  engineOptionsToken,
  eventLogToken,
  flavorStoreToken,
  hostRegistryToken,
  hostStoreToken,
  imageServiceToken,
  instanceStoreToken,
  leaseStoreToken,
  migrationStoreToken,
  networkAdapterToken,
  quotaToken,
  schedulerToken,
  serverGroupStoreToken,
  unitOfWorkToken,
  volumeAdapterToken,
} from '../di/tokens.js';
import {
  CapabilityUnsupportedError,
  EngineClosedError,
  NotFoundError,
  RevisionConflictError,
} from '../errors.js';
import type { InstanceAction, RequestContext } from '../model/action.js';
import type { Host } from '../model/host.js';
import type { Image } from '../model/image.js';
import type { Instance, InstancePatch } from '../model/instance.js';
import { displayNameSchema, idSchema, metadataSchema } from '../model/names.js';
import {
  type CreateInstanceInput,
  type RebootKind,
  type RebuildRequest,
  rebootKindSchema,
  rebuildRequestSchema,
} from '../model/requests.js';
import { parseInput } from '../model/validation.js';
import type { Clock } from '../ports/clock.js';
import {
  callAbortState,
  supportsConsoleOutput,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsRebuild,
  supportsSnapshot,
  supportsSuspend,
} from '../ports/driver.js';
import { supportsRescue } from '../ports/driver-moves.js';
import type { ImageService } from '../ports/image-service.js';
import type { NetworkAdapter } from '../ports/network.js';
import type { QuotaEngine } from '../ports/quota.js';
import type { Scheduler } from '../ports/scheduler.js';
import type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  InstanceFilter,
  InstanceStore,
  MigrationStore,
  ServerGroupStore,
} from '../ports/stores.js';
import type { EventLog, EventLogFilter, LeaseStore, LoggedEvent, UnitOfWork } from '../ports/unit-of-work.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { ActionFlow } from './action-flow.js';
import { FlavorAdmin, HostAdmin, type HostStatus, QuotaAdmin, ServerGroupAdmin } from './admin-facades.js';
import { CreateFlow } from './create-flow.js';
import { DeleteFlow } from './delete-flow.js';
import { EngineContext } from './engine-context.js';
import type { EngineOptions } from './engine-options.js';
import { EvacuateFlow, type EvacuateOptions, type EvacuateReport } from './evacuate-flow.js';
import type { InstanceEvent } from './events.js';
import { HostLeases } from './host-leases.js';
import { type HostBinding, type HostRegistry, hostFromReport } from './host-registry.js';
import { InterfaceAttachFlow, type InterfaceAttachRequest } from './interface-attach-flow.js';
import { type EngineDeps, engineInternals } from './internals.js';
import { type LiveMigrateOptions, LiveMigrationFlow } from './live-migration-flow.js';
import { LockFlow } from './lock-flow.js';
import { MigrationAdmin } from './migration-admin.js';
import { PowerSync } from './power-sync.js';
import { type ReconcileReport, Reconciler } from './reconciler.js';
import { type ColdMigrateOptions, ResizeFlow } from './resize-flow.js';
import { ShelveFlow } from './shelve-flow.js';
import { VolumeAttachFlow, type VolumeAttachRequest } from './volume-attach-flow.js';
import { WatchHub } from './watch-hub.js';

/** Options of {@link ComputeEngine.events}. */
export interface EventStreamOptions extends EventLogFilter {
  /** Replay events after this cursor (a `seq` seen before) from the durable log, then go live. */
  readonly since?: number;
}

/**
 * The lifecycle engine: creates, runs and deletes instances across hosts, one task at a time per
 * instance, every change an event on {@link ComputeEngine.events$} and in the durable event log.
 *
 * Build it with `createCompute()` (or resolve it from a container set up with `registerCore`).
 * Call {@link ComputeEngine.open} once hosts are added: it reconciles the store with what the
 * drivers report and starts the periodic reconciler when one is configured.
 */
@injectable()
export class ComputeEngine {
  private readonly ctx: EngineContext;
  private readonly creates: CreateFlow;
  private readonly deletes: DeleteFlow;
  private readonly actionFlow: ActionFlow;
  private readonly evacuations: EvacuateFlow;
  private readonly locks: LockFlow;
  private readonly resizes: ResizeFlow;
  private readonly shelves: ShelveFlow;
  private readonly liveMigrations: LiveMigrationFlow;
  private readonly volumeAttachments: VolumeAttachFlow;
  private readonly interfaceAttachments: InterfaceAttachFlow;
  private readonly power: PowerSync;
  private readonly reconciler: Reconciler;
  private readonly leases: HostLeases;
  private readonly watches: WatchHub;
  private healer: ReturnType<typeof setInterval> | undefined;
  private healing: Promise<unknown> | undefined;
  private readonly lastReport$ = new Subject<ReconcileReport>();

  /** Every instance event, hot: subscribers see events from the moment they subscribe. */
  readonly events$: Observable<InstanceEvent>;
  /** Reports of the periodic reconciler's passes. */
  readonly reconciled$: Observable<ReconcileReport> = this.lastReport$.asObservable();
  /** Flavors: create (validated), get, list, delete. */
  readonly flavors: FlavorAdmin;
  /** Per-project quota limits (validated) and usage. */
  readonly quotas: QuotaAdmin;
  /** Hosts: get, list, enable or disable with a reason, mark up or down. */
  readonly hosts: HostAdmin;
  /** Server groups: create (validated), get, list, delete. */
  readonly serverGroups: ServerGroupAdmin;
  /** Migration records of the moves (live, cold, resize): get, list by instance and status. */
  readonly migrations: MigrationAdmin;

  constructor(
    @inject(instanceStoreToken) private readonly instanceStore: InstanceStore,
    @inject(hostStoreToken) private readonly hostStore: HostStore,
    @inject(claimStoreToken) claimStore: ClaimStore,
    @inject(actionStoreToken) private readonly actionStore: ActionStore,
    @inject(flavorStoreToken) flavors: FlavorStore,
    @inject(serverGroupStoreToken) groups: ServerGroupStore,
    @inject(unitOfWorkToken) unit: UnitOfWork,
    @inject(eventLogToken) private readonly eventLog: EventLog,
    @inject(leaseStoreToken) leaseStore: LeaseStore,
    @inject(migrationStoreToken) migrationStore: MigrationStore,
    @inject(schedulerToken) readonly scheduler: Scheduler,
    @inject(quotaToken) quota: QuotaEngine,
    /** The image service: import, register, list, remove images (validated). */
    @inject(imageServiceToken) readonly images: ImageService,
    @inject(networkAdapterToken) network: NetworkAdapter,
    @inject(volumeAdapterToken) volumes: VolumeAdapter,
    @inject(clockToken) clock: Clock,
    @inject(hostRegistryToken) private readonly registry: HostRegistry,
    @inject(engineOptionsToken) readonly options: EngineOptions & { readonly soleOwner?: boolean },
  ) {
    this.ctx = new EngineContext({
      instances: instanceStore,
      hosts: hostStore,
      claims: claimStore,
      actions: actionStore,
      flavors,
      groups,
      unit,
      eventLog,
      leases: leaseStore,
      migrations: migrationStore,
      scheduler,
      quota,
      images,
      network,
      volumes,
      clock,
      registry,
      options,
    });
    this.events$ = this.ctx.events$;
    this.watches = new WatchHub(this.ctx.logged);
    this.leases = new HostLeases(leaseStore, this.ctx.engineId, options.hostLeaseTtlMs, () => clock.now());
    this.creates = new CreateFlow(this.ctx);
    this.deletes = new DeleteFlow(this.ctx);
    this.actionFlow = new ActionFlow(this.ctx);
    this.volumeAttachments = new VolumeAttachFlow(this.ctx, this.actionFlow);
    this.interfaceAttachments = new InterfaceAttachFlow(this.ctx, this.actionFlow);
    this.power = new PowerSync(this.ctx);
    this.resizes = new ResizeFlow(this.ctx);
    this.shelves = new ShelveFlow(this.ctx);
    this.liveMigrations = new LiveMigrationFlow(this.ctx);
    this.reconciler = new Reconciler(this.ctx, this.deletes, this.leases, options.soleOwner ?? false, {
      resizes: this.resizes,
      shelves: this.shelves,
    });
    this.flavors = new FlavorAdmin(flavors);
    this.quotas = new QuotaAdmin(quota);
    this.evacuations = new EvacuateFlow(this.ctx);
    this.locks = new LockFlow(this.ctx);
    this.migrations = new MigrationAdmin(migrationStore);
    this.hosts = new HostAdmin(hostStore, scheduler, async (before, after) => {
      if (this.ctx.closed || before.up === after.up) return;
      if (!after.up) await this.evacuations.hostWentDown(after.id);
      else await this.evacuations.hostCameBack(after.id);
    });
    this.serverGroups = new ServerGroupAdmin(groups);
  }

  /** For `internalsOf` in `@nova-lfs/core/testing` only. @internal */
  [engineInternals](): EngineDeps & { readonly openWatches: number } {
    return { ...this.ctx.deps, openWatches: this.watches.size };
  }

  /** This engine process's id (the owner of its host leases). */
  get engineId(): string {
    return this.ctx.engineId;
  }

  private refuseIfClosed(operation: string): void {
    if (this.ctx.closed) throw new EngineClosedError(operation);
  }

  // ---- hosts -------------------------------------------------------------------------------

  /**
   * Binds a host: reads its driver's report, records it, tells the scheduler, takes the host's
   * lease and follows its power-state events. @throws DuplicateError if the id is taken.
   */
  async addHost(binding: HostBinding): Promise<Host> {
    this.refuseIfClosed('addHost');
    this.registry.add(binding);
    try {
      const previous = await this.hostStore.get(binding.id);
      const report = await this.ctx.callDriver(
        'read',
        { operation: 'getHostReport', hostId: binding.id },
        undefined,
        (d) => d.getHostReport(),
      );
      const host = {
        ...hostFromReport(binding, report),
        ...(previous && binding.enabled === undefined
          ? { enabled: previous.enabled, disabledReason: previous.disabledReason }
          : {}),
      };
      await this.hostStore.upsert(host);
      this.scheduler.upsertHost(host);
      await this.leases.want(binding.id);
      this.power.follow(binding.id, binding.driver);
      return host;
    } catch (e) {
      this.registry.remove(binding.id);
      throw e;
    }
  }

  /**
   * Re-reads a host's report from its driver (inventory, traits) and updates the scheduler. What
   * the driver does not report stays: enabled/up status, and the zone and aggregates an admin set
   * with `hosts.setPlacement`.
   */
  async refreshHost(hostId: string): Promise<Host> {
    this.refuseIfClosed('refreshHost');
    const binding = this.registry.get(hostId);
    const previous = await this.hostStore.get(hostId);
    const report = await this.ctx.callDriver('read', { operation: 'getHostReport', hostId }, undefined, (d) =>
      d.getHostReport(),
    );
    const host = {
      ...hostFromReport(binding, report),
      ...(previous
        ? {
            enabled: previous.enabled,
            up: previous.up,
            disabledReason: previous.disabledReason,
            availabilityZone: previous.availabilityZone,
            aggregates: previous.aggregates,
          }
        : {}),
    };
    await this.hostStore.upsert(host);
    this.scheduler.upsertHost(host);
    return host;
  }

  /**
   * Enables or disables a host (with a reason) or marks it up or down.
   * @throws ValidationError naming the field (only `enabled`, `disabledReason`, `up`, typed);
   * NotFoundError for an unknown host
   */
  async setHostStatus(hostId: string, status: HostStatus): Promise<Host> {
    this.refuseIfClosed('setHostStatus');
    return this.hosts.setStatus(hostId, status);
  }

  /** Unbinds a host: no more scheduling, no more events, its lease given up. Its instances keep their records. */
  async removeHost(hostId: string): Promise<void> {
    this.refuseIfClosed('removeHost');
    this.power.unfollow(hostId);
    this.registry.remove(hostId);
    this.scheduler.removeHost(hostId);
    await this.leases.drop(hostId);
    await this.hostStore.remove(hostId);
  }

  // ---- engine lifecycle ---------------------------------------------------------------------

  /**
   * Opens the engine for service: reconciles with the drivers (stuck tasks, power states, leaked
   * claims, quota, orphans) and starts the periodic reconciler and lease renewal when
   * `reconcileIntervalMs` is set. Call once, after adding hosts.
   */
  async open(): Promise<ReconcileReport> {
    this.refuseIfClosed('open');
    const report = await this.reconciler.reconcile('startup');
    this.leases.start();
    const every = this.options.reconcileIntervalMs;
    if (every > 0 && !this.healer) {
      this.healer = setInterval(() => void this.heal(), every);
      this.healer.unref?.();
    }
    return report;
  }

  /** Runs a reconciliation pass now (`periodic` unless told otherwise). */
  async reconcile(mode: 'startup' | 'periodic' = 'periodic'): Promise<ReconcileReport> {
    this.refuseIfClosed('reconcile');
    return this.reconciler.reconcile(mode);
  }

  /** One periodic pass, never two at once; its report goes to `reconciled$`. */
  private async heal(): Promise<void> {
    if (this.healing || this.ctx.closed) return;
    this.healing = this.reconciler
      .reconcile('periodic')
      .then((r) => this.lastReport$.next(r))
      .catch(() => undefined)
      .finally(() => {
        this.healing = undefined;
      });
    await this.healing;
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /**
   * Creates `count` instances and waits for their builds. Resolves with each instance in its
   * final state: `active`, `error` with a fault (no valid host, every attempt failed, a deadline
   * passed), or `deleted` when a delete stopped it. Idempotent on `requestId`: a retry of an
   * admitted request resolves with that request's instances, creating nothing.
   * @throws ValidationError naming the field; NotFoundError for an unknown flavor, image or group
   * (with `field`); QuotaExceededError; EngineClosedError. Nothing is created or held then.
   */
  async create(input: CreateInstanceInput): Promise<Instance[]> {
    const admitted = await this.creates.admit(input);
    return this.creates.build(admitted);
  }

  /**
   * Like {@link create} but resolves once the request is admitted, with the instances in
   * `building`; the build continues in the background (follow it with `watch`). The returned
   * `done` resolves with the final states.
   */
  async submit(input: CreateInstanceInput): Promise<{ instances: Instance[]; done: Promise<Instance[]> }> {
    const admitted = await this.creates.admit(input);
    return { instances: admitted.instances, done: this.creates.build(admitted) };
  }

  /**
   * Rebuilds a down host's instances on other hosts (Nova's evacuate): each ACTIVE, STOPPED or
   * ERROR instance without a task is placed like a create (flavor, image, zone, hints, server
   * group), spawned from its image there (a stopped one is powered off again), and its record
   * moved; the down host's claim is released, the quota is unchanged. An instance no host fits
   * stays on the down host with a NoValidHost fault; one whose spawn fails stays there in ERROR.
   * Each gets an `evacuate` action. The copies left on the down host are destroyed by
   * reconciliation once its driver answers again (`staleDestroyed` in the report).
   * @throws HostNotDownError for a host that is up (even if disabled); NotFoundError for an
   * unknown host; ValidationError for bad options
   */
  async evacuate(hostId: string, options?: EvacuateOptions): Promise<EvacuateReport> {
    this.refuseIfClosed('evacuate');
    return this.evacuations.evacuate(hostId, options);
  }

  /** Deletes an instance; idempotent, accepted in every state and over any task (aborting it). */
  async delete(id: string, request?: RequestContext): Promise<void> {
    return this.deletes.delete(id, request);
  }

  /** Powers a stopped instance on (Nova's `os-start`). */
  async powerOn(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'start',
      supportsPowerControl,
      (d, i, call) => d.powerOn(i, call),
      request,
    );
  }

  /** Powers off (graceful within `powerOffTimeoutMs`, then forced; Nova's `os-stop`). */
  async powerOff(id: string, request?: RequestContext): Promise<Instance> {
    const timeoutMs = this.options.powerOffTimeoutMs;
    return this.actionFlow.run(
      id,
      'stop',
      supportsPowerControl,
      (d, i, call) =>
        d.powerOff(i, {
          timeoutMs,
          get signal() {
            return call.signal;
          },
          [callAbortState]: () => call[callAbortState]?.(),
        }),
      request,
    );
  }

  /**
   * Reboots: `soft` asks the guest, `hard` resets it.
   * @throws ValidationError (field `kind`) for anything but `soft` or `hard`
   */
  async reboot(id: string, kind: RebootKind = 'soft', request?: RequestContext): Promise<Instance> {
    const { kind: how } = parseInput(z.object({ kind: rebootKindSchema }), { kind });
    return this.actionFlow.run(
      id,
      how === 'soft' ? 'reboot' : 'reboot_hard',
      supportsReboot,
      (d, i, call) => d.reboot(i, how, call),
      request,
      undefined,
      'reboot',
    );
  }

  /** Freezes an active instance in memory. */
  async pause(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'pause',
      supportsPause,
      (d, i, call) => d.pause(i, call),
      request,
      undefined,
      'pause',
    );
  }

  /** Thaws a paused instance. */
  async unpause(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'unpause',
      supportsPause,
      (d, i, call) => d.unpause(i, call),
      request,
      undefined,
      'pause',
    );
  }

  /** Saves an active instance to disk. Refused with CapabilityUnsupportedError where the driver cannot. */
  async suspend(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'suspend',
      supportsSuspend,
      (d, i, call) => d.suspend(i, call),
      request,
      undefined,
      'pause',
    );
  }

  /** Restores a suspended instance. */
  async resume(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'resume',
      supportsSuspend,
      (d, i, call) => d.resume(i, call),
      request,
      undefined,
      'pause',
    );
  }

  /** Re-creates the guest from a (new) image, keeping id, host and claim. */
  async rebuild(id: string, input: RebuildRequest, request?: RequestContext): Promise<Instance> {
    const req = parseInput(rebuildRequestSchema, input);
    const image = await this.images.get(req.imageId);
    if (!image) throw new NotFoundError('image', req.imageId, 'imageId');
    return this.actionFlow.run(
      id,
      'rebuild',
      supportsRebuild,
      async (d, i, call) => {
        const target = { ...i, imageId: image.id, ...(req.name ? { name: req.name } : {}) };
        await d.rebuild({
          instance: target,
          flavor: i.flavor,
          image,
          images: this.images,
          ports: [],
          volumes: [],
          get signal() {
            return call.signal;
          },
          [callAbortState]: () => call[callAbortState]?.(),
        });
      },
      request,
      {
        imageId: image.id,
        ...(req.name ? { name: req.name } : {}),
        ...(req.metadata ? { metadata: req.metadata } : {}),
      },
      'rebuild',
    );
  }

  /**
   * Captures the instance's disk into the image service as a new image named `name` (Nova's
   * `createImage`); the image is listed before this resolves.
   * @throws CapabilityUnsupportedError where the driver cannot; ValidationError for a bad name
   */
  async snapshot(id: string, name: string, request?: RequestContext): Promise<Image> {
    const imageName = parseInput(displayNameSchema, name);
    let image: Image | undefined;
    await this.actionFlow.run(
      id,
      'snapshot',
      supportsSnapshot,
      async (d, i, call) => {
        image = await d.snapshot(i, {
          name: imageName,
          images: this.images,
          get signal() {
            return call.signal;
          },
          [callAbortState]: () => call[callAbortState]?.(),
        });
      },
      request,
      undefined,
      'snapshot',
    );
    return image!;
  }

  // ---- resize and cold migration ----------------------------------------------------------------

  /**
   * Resizes to another flavor (Nova's `resize`): the destination is placed like a create with the
   * new flavor (another host, or the same one when no other fits and `allowResizeToSameHost` is
   * on), the guest is re-created there, and the instance waits in `resized` (VERIFY_RESIZE) for
   * {@link confirmResize} or {@link revertResize} (or the automatic confirm after
   * `resizeConfirmWindowMs`), with claims on both hosts and quota of the bigger flavor meanwhile.
   * @throws ValidationError / NotFoundError (field `flavorId`); InvalidStateError;
   * InstanceLockedError; CapabilityUnsupportedError (`coldMigration`); MigrationPreCheckError;
   * NoValidHostError; QuotaExceededError; DriverError (rolled back: nothing held)
   */
  async resize(id: string, flavorId: string, request?: RequestContext): Promise<Instance> {
    return this.resizes.start(id, 'resize', { flavorId }, request);
  }

  /**
   * Cold-migrates (Nova's `migrate`): a resize to the same flavor on another host (`host`, or the
   * scheduler's pick), waiting in `resized` for its confirm or revert.
   * @throws as {@link resize} (field `host`)
   */
  async migrate(id: string, options: ColdMigrateOptions = {}, request?: RequestContext): Promise<Instance> {
    return this.resizes.start(id, 'cold', options, request);
  }

  /** Keeps a resize or cold migration: the source's copy and claim go. @throws InvalidStateError unless `resized` */
  async confirmResize(id: string, request?: RequestContext): Promise<Instance> {
    return this.resizes.confirm(id, request);
  }

  /** Undoes a resize or cold migration: back on the source with the old flavor. @throws InvalidStateError unless `resized` */
  async revertResize(id: string, request?: RequestContext): Promise<Instance> {
    return this.resizes.revert(id, request);
  }

  // ---- live migration -----------------------------------------------------------------------

  /**
   * Live-migrates (Nova's `os-migrateLive`): the guest keeps running while it moves to `host` or the
   * scheduler's pick (a create's filters and claims; claims on both hosts while it runs; task
   * `migrating`, vm state kept). Pre-checks refuse early with MigrationPreCheckError and the
   * reason; progress is published as `instance.migration` events; resolves once it runs on the
   * destination. Past `liveMigrationCompletionTimeoutMs` it is forced to complete.
   * @throws CapabilityUnsupportedError (`liveMigration`); MigrationPreCheckError; NoValidHostError;
   * InvalidStateError; InstanceLockedError; DriverError (aborted or failed: the guest stays on the
   * source, nothing held)
   */
  async liveMigrate(id: string, options?: LiveMigrateOptions, request?: RequestContext): Promise<Instance> {
    return this.liveMigrations.start(id, options, request);
  }

  /** Aborts the instance's running live migration; the guest stays on the source. @throws InvalidStateError */
  async abortMigration(id: string): Promise<void> {
    return this.liveMigrations.abort(id);
  }

  /** Forces the instance's running live migration to complete (post-copy, or a raised downtime). @throws InvalidStateError */
  async forceCompleteMigration(id: string): Promise<void> {
    return this.liveMigrations.forceComplete(id);
  }

  // ---- shelve ---------------------------------------------------------------------------------

  /**
   * Shelves (Nova's `shelve`): snapshot into the image service, power off, state `shelved`; then
   * offloaded at once (`shelvedOffloadTimeMs` 0, the default), later by the reconciler, or by
   * {@link shelveOffload}. @throws CapabilityUnsupportedError (`snapshot`); InvalidStateError;
   * InstanceLockedError; DriverError
   */
  async shelve(id: string, request?: RequestContext): Promise<Instance> {
    return this.shelves.shelve(id, request);
  }

  /** Destroys a shelved instance's guest and releases its claim; state `shelved_offloaded`, record kept. */
  async shelveOffload(id: string, request?: RequestContext): Promise<Instance> {
    return this.shelves.offload(id, request);
  }

  /**
   * Unshelves: powered on where it is, or placed like a create and booted from its shelve snapshot
   * (then removed from the image service). @throws NoValidHostError; DriverError (stays shelved)
   */
  async unshelve(id: string, request?: RequestContext): Promise<Instance> {
    return this.shelves.unshelve(id, request);
  }

  // ---- rescue ---------------------------------------------------------------------------------

  /**
   * Boots a rescue image (`imageId`, default the instance's own) with the original disk attached as
   * a second disk (Nova's `rescue`); state `rescued`.
   * @throws CapabilityUnsupportedError (`rescue`); NotFoundError (field `imageId`); InvalidStateError
   */
  async rescue(id: string, options: { imageId?: string } = {}, request?: RequestContext): Promise<Instance> {
    const { imageId } = parseInput(z.strictObject({ imageId: idSchema.optional() }), options);
    const current = await this.get(id);
    const rescueImage = await this.images.get(imageId ?? current.imageId);
    if (!rescueImage) throw new NotFoundError('image', imageId ?? current.imageId, 'imageId');
    return this.actionFlow.run(
      id,
      'rescue',
      supportsRescue,
      (d, i, call) =>
        d.rescue({
          instance: i,
          flavor: i.flavor,
          rescueImage,
          images: this.images,
          get signal() {
            return call.signal;
          },
          [callAbortState]: () => call[callAbortState]?.(),
        }),
      request,
      undefined,
      'move',
    );
  }

  /** Boots the instance's own disk again (Nova's `unrescue`). @throws InvalidStateError unless `rescued` */
  async unrescue(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      'unrescue',
      supportsRescue,
      (d, i, call) => d.unrescue(i, call),
      request,
      undefined,
      'move',
    );
  }

  // ---- volumes --------------------------------------------------------------------------------

  /**
   * Attaches a volume to an active, paused or stopped instance (Nova's `os-volume_attachments`):
   * the VolumeAdapter connects it on the instance's host, the driver hot-plugs it as `device` (or
   * the next free disk), and `instance.volumes` records it. On any failure nothing stays connected
   * and the instance keeps its volumes; past the deadline (`timeouts.power`) a volume the driver
   * is still plugging in stays recorded as `attaching` (the instance accepts only delete) until
   * the driver answers, then is unplugged and disconnected.
   * @throws ValidationError (fields `volumeId`, `device`; rule `attached` for a volume already on
   *   this instance); CapabilityUnsupportedError (`volumeAttach`); InvalidStateError;
   *   InstanceLockedError; the adapter's refusal (an unknown volume, one in use elsewhere);
   *   DriverError; DeadlineExceededError (the fault is recorded)
   */
  async attachVolume(id: string, input: VolumeAttachRequest, request?: RequestContext): Promise<Instance> {
    return this.volumeAttachments.attach(id, input, request);
  }

  /**
   * Detaches an attached volume: the driver unplugs its device, the VolumeAdapter disconnects it,
   * and it leaves `instance.volumes`.
   * @throws NotFoundError (field `volumeId`: not attached to this instance); ValidationError;
   *   CapabilityUnsupportedError (`volumeAttach`); InvalidStateError; InstanceLockedError; DriverError
   */
  async detachVolume(id: string, volumeId: string, request?: RequestContext): Promise<Instance> {
    return this.volumeAttachments.detach(id, volumeId, request);
  }

  // ---- network interfaces ---------------------------------------------------------------------

  /**
   * Attaches a network interface to an active, paused or stopped instance (Nova's `os-interface`):
   * the NetworkAdapter binds a new port on `networkId` (or binds the existing `portId`), the driver
   * hot-plugs it, and `instance.ports` records it. On any failure no port stays bound and the
   * instance keeps its ports; past the deadline (`timeouts.power`) a port the driver is still
   * plugging in stays recorded as `attaching` (the instance accepts only delete) until the driver
   * answers, then is unplugged and released.
   * @throws ValidationError (fields `networkId`, `portId`; rule `attached` for a port already on
   *   this instance); CapabilityUnsupportedError (`interfaceAttach`); InvalidStateError;
   *   InstanceLockedError; the adapter's refusal (an unknown network or port, a port bound
   *   elsewhere, no address left); DriverError; DeadlineExceededError (the fault is recorded)
   */
  async attachInterface(
    id: string,
    input: InterfaceAttachRequest,
    request?: RequestContext,
  ): Promise<Instance> {
    return this.interfaceAttachments.attach(id, input, request);
  }

  /**
   * Detaches a bound port: the driver unplugs its interface, the NetworkAdapter releases it (a port
   * it made goes, one made beforehand is unbound), and it leaves `instance.ports`.
   * @throws NotFoundError (field `portId`: not bound to this instance); ValidationError;
   *   CapabilityUnsupportedError (`interfaceAttach`); InvalidStateError; InstanceLockedError; DriverError
   */
  async detachInterface(id: string, portId: string, request?: RequestContext): Promise<Instance> {
    return this.interfaceAttachments.detach(id, portId, request);
  }

  // ---- lock -----------------------------------------------------------------------------------

  /**
   * Locks an instance with an optional reason (Nova's `lock`): from then on actions of callers who
   * are not admins (`request.isAdmin`) are refused with InstanceLockedError. Accepted in every
   * state; locking a locked instance keeps the first lock.
   * @throws ValidationError (field `reason`); NotFoundError
   */
  async lock(id: string, options?: { reason?: string }, request?: RequestContext): Promise<Instance> {
    return this.locks.lock(id, options, request);
  }

  /**
   * Unlocks (Nova's `unlock`); an admin's lock only by an admin.
   * @throws InstanceLockedError; NotFoundError
   */
  async unlock(id: string, request?: RequestContext): Promise<Instance> {
    return this.locks.unlock(id, request);
  }

  /** The instance's console output (serial log or container logs). */
  async consoleOutput(id: string, options?: { lines?: number }): Promise<string> {
    const instance = await this.get(id);
    if (!instance.hostId) return '';
    const driver = this.registry.driverFor(instance.hostId);
    if (!supportsConsoleOutput(driver)) {
      throw new CapabilityUnsupportedError('consoleOutput', driver.kind, instance.hostId);
    }
    return this.ctx.callDriver(
      'read',
      { operation: 'getConsoleOutput', instanceId: id, hostId: instance.hostId },
      undefined,
      () => driver.getConsoleOutput(instance, options),
    );
  }

  /**
   * Renames an instance or replaces its metadata (Nova's `PUT /servers/{id}` and metadata calls);
   * accepted in every live state, with or without a task in progress.
   * @throws ValidationError naming the field; NotFoundError for an unknown instance
   */
  async update(id: string, changes: { name?: string; metadata?: Record<string, string> }): Promise<Instance> {
    this.refuseIfClosed('update');
    const patch = parseInput(
      z.object({ name: displayNameSchema.optional(), metadata: metadataSchema.optional() }).strict(),
      changes,
    );
    const edit: InstancePatch = {
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.metadata !== undefined ? { metadata: patch.metadata } : {}),
    };
    // one unit of work at the revision read; another writer in between means read again
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return await this.ctx.apply(await this.get(id), edit);
      } catch (e) {
        if (!(e instanceof RevisionConflictError)) throw e;
      }
    }
    throw new RevisionConflictError('instance', id, -1, -1);
  }

  // ---- queries -------------------------------------------------------------------------------

  /** @throws NotFoundError */
  async get(id: string): Promise<Instance> {
    const instance = await this.instanceStore.get(id);
    if (!instance) throw new NotFoundError('instance', id, 'id');
    return instance;
  }

  /**
   * Instances matching the filter, sorted by creation (then id); `limit` + `marker` page them.
   * @throws NotFoundError (field `marker`) for an unknown marker
   */
  async list(filter?: InstanceFilter): Promise<Instance[]> {
    return this.instanceStore.list(filter);
  }

  /** The instance's action history, oldest first (kept a while after delete). */
  async listActions(id: string): Promise<InstanceAction[]> {
    return this.actionStore.list(id);
  }

  /**
   * Events of one instance; completes after its `instance.deleted` event, and at once (empty)
   * for an instance that does not exist.
   */
  watch(id: string): Observable<InstanceEvent> {
    return new Observable<InstanceEvent>((subscriber) => {
      // follow at once (no event may slip by while the store answers), deliver once it has
      let known = this.ctx.builds.has(id);
      const early: InstanceEvent[] = [];
      const deliver = (e: InstanceEvent) => {
        subscriber.next(e);
        if (e.type === 'instance.deleted') subscriber.complete();
      };
      const sub = this.watches.watch(id).subscribe({
        next: (e) => (known ? deliver(e) : early.push(e)),
        complete: () => subscriber.complete(),
      });
      if (!known) {
        this.instanceStore.get(id).then(
          (found) => {
            if (!found && early.length === 0 && !this.ctx.builds.has(id)) {
              subscriber.complete();
              return;
            }
            known = true;
            for (const e of early.splice(0)) if (!subscriber.closed) deliver(e);
          },
          (e: unknown) => subscriber.error(e),
        );
      }
      return () => sub.unsubscribe();
    });
  }

  /**
   * The durable event stream: with `since`, replays the logged events after that cursor, then goes
   * on live without a gap or a duplicate; filtered by instance or project. Completes when the
   * engine closes.
   */
  events(options: EventStreamOptions = {}): Observable<LoggedEvent> {
    return new Observable<LoggedEvent>((subscriber) => {
      let last = options.since ?? 0;
      let replaying = options.since !== undefined;
      const buffered: LoggedEvent[] = [];
      const emit = (l: LoggedEvent) => {
        if (l.seq <= last) return;
        last = l.seq;
        if (options.instanceId !== undefined && l.event.instanceId !== options.instanceId) return;
        if (options.projectId !== undefined && l.projectId !== options.projectId) return;
        subscriber.next(l);
      };
      const sub = this.ctx.logged.subscribe({
        next: (l) => (replaying ? buffered.push(l) : emit(l)),
        complete: () => subscriber.complete(),
      });
      if (replaying) {
        const filter = {
          ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
          ...(options.projectId !== undefined ? { projectId: options.projectId } : {}),
        };
        void (async () => {
          for (;;) {
            const page = await this.eventLog.read(last, 1000, filter);
            for (const l of page) emit(l);
            if (page.length < 1000) break;
          }
          for (const l of buffered.splice(0)) emit(l);
          replaying = false;
        })().catch((e) => subscriber.error(e));
      }
      return () => sub.unsubscribe();
    });
  }

  /**
   * Stops the periodic reconciler, gives up host leases, stops following drivers and closes
   * them. Guests keep running; the store keeps its records. Later calls are refused with
   * EngineClosedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.ctx.closed) return;
    this.ctx.closed = true;
    if (this.healer) clearInterval(this.healer);
    await this.healing;
    this.power.close();
    await this.leases.close();
    for (const b of this.registry.list()) await b.driver.close?.();
    await this.images.close?.();
    this.ctx.logged.complete();
    this.lastReport$.complete();
    for (const hook of this.closeHooks.splice(0)) await hook();
  }

  private readonly closeHooks: Array<() => Promise<void>> = [];

  /** Registers something to close after the engine (`createCompute` closes the storage it opened). */
  onClose(hook: () => Promise<void>): void {
    this.closeHooks.push(hook);
  }

  private location: string | undefined;

  /**
   * Where the durable storage `createCompute` opened keeps the state (the SQLite file, or the
   * PostgreSQL URL with the password redacted and the schema); `undefined` when the state is in
   * memory or in stores the caller passed.
   */
  get storageLocation(): string | undefined {
    return this.location;
  }

  /** Used by `createCompute`: the storage it opened for this engine, closed after the engine. */
  attachStorage(location: string, close: () => Promise<void>): void {
    this.location = location;
    this.onClose(close);
  }
}
