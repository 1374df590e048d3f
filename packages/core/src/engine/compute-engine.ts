import { filter, type Observable, takeWhile } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import {
  actionStoreToken,
  claimStoreToken,
  clockToken,
  engineOptionsToken,
  flavorStoreToken,
  hostRegistryToken,
  hostStoreToken,
  imageServiceToken,
  instanceStoreToken,
  networkAdapterToken,
  quotaToken,
  schedulerToken,
  serverGroupStoreToken,
  volumeAdapterToken,
} from '../di/tokens.js';
import { CapabilityUnsupportedError, NotFoundError } from '../errors.js';
import type { InstanceAction, RequestContext } from '../model/action.js';
import type { Host } from '../model/host.js';
import type { Instance } from '../model/instance.js';
import { type CreateInstanceInput, type RebuildRequest, rebuildRequestSchema } from '../model/requests.js';
import { type ServerGroup, type ServerGroupInput, serverGroupSchema } from '../model/server-group.js';
import { parseInput } from '../model/validation.js';
import type { Clock } from '../ports/clock.js';
import {
  supportsConsoleOutput,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsRebuild,
  supportsSuspend,
} from '../ports/driver.js';
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
  ServerGroupStore,
} from '../ports/stores.js';
import type { VolumeAdapter } from '../ports/volume.js';
import { ActionFlow } from './action-flow.js';
import { CreateFlow } from './create-flow.js';
import { DeleteFlow } from './delete-flow.js';
import { EngineContext } from './engine-context.js';
import type { EngineOptions } from './engine-options.js';
import type { InstanceEvent } from './events.js';
import { type HostBinding, type HostRegistry, hostFromReport } from './host-registry.js';
import { PowerSync } from './power-sync.js';
import { type ReconcileReport, Reconciler } from './reconciler.js';

/**
 * The lifecycle engine: creates, runs and deletes instances across hosts, one task at a time per
 * instance, every change an event on {@link ComputeEngine.events$}.
 *
 * Build it with `createCompute()` (or resolve it from a container set up with `registerCore`).
 * Call {@link ComputeEngine.start} once hosts are added: it reconciles the store with what the
 * drivers report.
 */
@injectable()
export class ComputeEngine {
  private readonly ctx: EngineContext;
  private readonly creates: CreateFlow;
  private readonly deletes: DeleteFlow;
  private readonly actionFlow: ActionFlow;
  private readonly power: PowerSync;
  private readonly reconciler: Reconciler;

  /** Every instance event, hot: subscribers see events from the moment they subscribe. */
  readonly events$: Observable<InstanceEvent>;

  constructor(
    @inject(instanceStoreToken) readonly instances: InstanceStore,
    @inject(hostStoreToken) readonly hosts: HostStore,
    @inject(claimStoreToken) readonly claims: ClaimStore,
    @inject(actionStoreToken) readonly actions: ActionStore,
    @inject(flavorStoreToken) readonly flavors: FlavorStore,
    @inject(serverGroupStoreToken) readonly groups: ServerGroupStore,
    @inject(schedulerToken) readonly scheduler: Scheduler,
    @inject(quotaToken) readonly quota: QuotaEngine,
    @inject(imageServiceToken) readonly images: ImageService,
    @inject(networkAdapterToken) network: NetworkAdapter,
    @inject(volumeAdapterToken) volumes: VolumeAdapter,
    @inject(clockToken) clock: Clock,
    @inject(hostRegistryToken) readonly registry: HostRegistry,
    @inject(engineOptionsToken) readonly options: EngineOptions,
  ) {
    this.ctx = new EngineContext({
      instances,
      hosts,
      claims,
      actions,
      flavors,
      groups,
      scheduler,
      quota,
      images,
      network,
      volumes,
      clock,
      registry,
      options,
    });
    this.events$ = this.ctx.events.asObservable();
    this.creates = new CreateFlow(this.ctx);
    this.deletes = new DeleteFlow(this.ctx);
    this.actionFlow = new ActionFlow(this.ctx);
    this.power = new PowerSync(this.ctx);
    this.reconciler = new Reconciler(this.ctx, this.deletes);
  }

  // ---- hosts -------------------------------------------------------------------------------

  /**
   * Adds a host: reads its driver's report, records it, tells the scheduler and follows its
   * power-state events. @throws DuplicateError if the id is taken.
   */
  async addHost(binding: HostBinding): Promise<Host> {
    this.registry.add(binding);
    try {
      const host = hostFromReport(binding, await binding.driver.getHostReport());
      await this.hosts.upsert(host);
      this.scheduler.upsertHost(host);
      this.power.follow(binding.id, binding.driver);
      return host;
    } catch (e) {
      this.registry.remove(binding.id);
      throw e;
    }
  }

  /** Re-reads a host's report from its driver (inventory, traits) and updates the scheduler. */
  async refreshHost(hostId: string): Promise<Host> {
    const binding = this.registry.get(hostId);
    const previous = await this.hosts.get(hostId);
    const host = {
      ...hostFromReport(binding, await binding.driver.getHostReport()),
      ...(previous ? { enabled: previous.enabled, up: previous.up } : {}),
    };
    await this.hosts.upsert(host);
    this.scheduler.upsertHost(host);
    return host;
  }

  /** Enables/disables a host or marks it up/down; the scheduler skips disabled and down hosts. */
  async setHostStatus(hostId: string, status: { enabled?: boolean; up?: boolean }): Promise<Host> {
    const host = await this.hosts.get(hostId);
    if (!host) throw new NotFoundError('host', hostId, 'hostId');
    const next = { ...host, ...status };
    await this.hosts.upsert(next);
    this.scheduler.upsertHost(next);
    return next;
  }

  /** Removes a host from scheduling and stops following it. Its instances keep their records. */
  async removeHost(hostId: string): Promise<void> {
    this.power.unfollow(hostId);
    this.registry.remove(hostId);
    this.scheduler.removeHost(hostId);
    await this.hosts.remove(hostId);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Reconciles with the drivers (the `Reconciler`: stuck tasks, power states, leaked claims, quota, orphans). Call once after adding hosts. */
  async start(): Promise<ReconcileReport> {
    return this.reconciler.reconcile();
  }

  /** Runs a reconciliation pass now. */
  async reconcile(): Promise<ReconcileReport> {
    return this.reconciler.reconcile();
  }

  /**
   * Creates `count` instances and waits for their builds. Resolves with each instance in its
   * final state: `active`, or `error` with a fault (no valid host, every attempt failed).
   * @throws ValidationError naming the field; NotFoundError for an unknown flavor, image or group
   * (with `field`); QuotaExceededError. Nothing is created or held in those cases.
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

  /** Deletes an instance; idempotent, accepted in every state and over any task. */
  async delete(id: string, request?: RequestContext): Promise<void> {
    return this.deletes.delete(id, request);
  }

  /** Powers on a stopped instance. */
  async startInstance(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(id, 'start', supportsPowerControl, (d, i) => d.powerOn(i), request);
  }

  /** Powers off (graceful within `powerOffTimeoutMs`, then forced). */
  async stop(id: string, request?: RequestContext): Promise<Instance> {
    const timeoutMs = this.options.powerOffTimeoutMs;
    return this.actionFlow.run(
      id,
      'stop',
      supportsPowerControl,
      (d, i) => d.powerOff(i, { timeoutMs }),
      request,
    );
  }

  /** Reboots: `soft` asks the guest, `hard` resets it. */
  async reboot(id: string, kind: 'soft' | 'hard' = 'soft', request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(
      id,
      kind === 'soft' ? 'reboot' : 'reboot_hard',
      supportsReboot,
      (d, i) => d.reboot(i, kind),
      request,
    );
  }

  /** Freezes an active instance in memory. */
  async pause(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(id, 'pause', supportsPause, (d, i) => d.pause(i), request);
  }

  /** Thaws a paused instance. */
  async unpause(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(id, 'unpause', supportsPause, (d, i) => d.unpause(i), request);
  }

  /** Saves an active instance to disk. Refused with CapabilityUnsupportedError where the driver cannot. */
  async suspend(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(id, 'suspend', supportsSuspend, (d, i) => d.suspend(i), request);
  }

  /** Restores a suspended instance. */
  async resume(id: string, request?: RequestContext): Promise<Instance> {
    return this.actionFlow.run(id, 'resume', supportsSuspend, (d, i) => d.resume(i), request);
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
      async (d, i) => {
        const target = { ...i, imageId: image.id, ...(req.name ? { name: req.name } : {}) };
        await d.rebuild({
          instance: target,
          flavor: i.flavor,
          image,
          images: this.images,
          ports: [],
          volumes: [],
        });
      },
      request,
      {
        imageId: image.id,
        ...(req.name ? { name: req.name } : {}),
        ...(req.metadata ? { metadata: req.metadata } : {}),
      },
    );
  }

  /** The instance's console output (serial log or container logs). */
  async consoleOutput(id: string, options?: { lines?: number }): Promise<string> {
    const instance = await this.get(id);
    if (!instance.hostId) return '';
    const driver = this.registry.driverFor(instance.hostId);
    if (!supportsConsoleOutput(driver)) {
      throw new CapabilityUnsupportedError('consoleOutput', driver.kind, instance.hostId);
    }
    return driver.getConsoleOutput(instance, options);
  }

  /**
   * Creates a server group (instances join it with the `hints.group` scheduler hint).
   * @throws ValidationError naming the field; DuplicateError if the id exists.
   */
  async createServerGroup(input: ServerGroupInput): Promise<ServerGroup> {
    const group = parseInput(serverGroupSchema, { members: [], ...input });
    await this.groups.add(group);
    return group;
  }

  /** Deletes a server group; its members stay. Idempotent. */
  async deleteServerGroup(id: string): Promise<void> {
    await this.groups.remove(id);
  }

  // ---- queries -------------------------------------------------------------------------------

  /** @throws NotFoundError */
  async get(id: string): Promise<Instance> {
    const instance = await this.instances.get(id);
    if (!instance) throw new NotFoundError('instance', id, 'id');
    return instance;
  }

  /** Instances matching the filter. */
  async list(filter?: InstanceFilter): Promise<Instance[]> {
    return this.instances.list(filter);
  }

  /** The instance's action history, oldest first (kept a while after delete). */
  async listActions(id: string): Promise<InstanceAction[]> {
    return this.actions.list(id);
  }

  /** Events of one instance; completes after its `instance.deleted` event. */
  watch(id: string): Observable<InstanceEvent> {
    return this.events$.pipe(
      filter((e) => e.instanceId === id),
      takeWhile((e) => e.type !== 'instance.deleted', true),
    );
  }

  /** Stops following drivers and closes them. Guests keep running; the store keeps its records. */
  async close(): Promise<void> {
    this.power.close();
    for (const b of this.registry.list()) await b.driver.close?.();
    this.ctx.events.complete();
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
