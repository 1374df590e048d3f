import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Subject } from 'rxjs';
import { DriverError, ErrorCode, isNovaError } from '../errors.js';
import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import type { Inventory } from '../model/resources.js';
import type { PowerState } from '../model/states.js';
import { abortableDelay as delay, untilAborted } from '../ports/abort-helpers.js';
import type {
  ComputeDriver,
  ConsoleReadable,
  DriverCallOptions,
  DriverCapabilities,
  DriverInstance,
  HostReport,
  InterfaceAttachable,
  Pausable,
  PowerControl,
  PowerStateEvent,
  Rebootable,
  Rebuildable,
  Snapshottable,
  SpawnRequest,
  Suspendable,
  VolumeAttachable,
} from '../ports/driver.js';
import { defineCapabilities, throwIfCallAborted } from '../ports/driver.js';
import type {
  ColdMigratable,
  FinishMigrationRequest,
  ForceCompleteMode,
  LiveMigratable,
  LiveMigrationOptions,
  MigrationTarget,
  Rescuable,
  RescueRequest,
} from '../ports/driver-moves.js';
import type { ImageService } from '../ports/image-service.js';
import type { PortBinding } from '../ports/network.js';
import type { BlockDevice } from '../ports/volume.js';
import { nextFreeDisk, pluggedDevices } from './fake-devices.js';
import { FakeMoves, HandoffPeer } from './fake-moves.js';
import { createHold, type FakeHold } from './hold.js';

let fakeCount = 0;
/** Fakes not closed yet, by `fakeId`: a migration's source finds its destination here. */
const liveFakes = new Map<string, FakeDriver>();

/** Operations of the fake driver that latency and failures can be set for. */
export type FakeOperation =
  | 'spawn'
  | 'destroy'
  | 'powerOff'
  | 'powerOn'
  | 'reboot'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'rebuild'
  | 'snapshot'
  | 'listInstances'
  | 'getHostReport'
  | 'prepareColdMigrationTarget'
  | 'migrateDisksAndPowerOff'
  | 'finishMigration'
  | 'confirmMigration'
  | 'revertMigrationOnDestination'
  | 'finishRevertMigration'
  | 'prepareLiveMigrationTarget'
  | 'checkLiveMigration'
  | 'liveMigrate'
  | 'rollbackLiveMigrationTarget'
  | 'rescue'
  | 'unrescue'
  | 'attachVolume'
  | 'detachVolume'
  | 'attachInterface'
  | 'detachInterface';

/**
 * A planned failure: fail the next `times` calls (default every call), optionally only for some
 * instances. The thrown `DriverError` carries `retryable` and `reschedule` when given, so engine
 * tests can tell a failure another host may fix from one no host can.
 */
export interface FakeFailure {
  readonly times?: number;
  readonly when?: (instance: Instance | undefined) => boolean;
  readonly message?: string;
  /** `DriverError.details.retryable` of the injected error (omitted: unset, which means true). */
  readonly retryable?: boolean;
  /** `DriverError.details.reschedule` of the injected error (omitted: unset, which means true). */
  readonly reschedule?: boolean;
}

/** Options of {@link FakeDriver}. */
export interface FakeDriverOptions {
  readonly hostname?: string;
  readonly hypervisorType?: string;
  readonly architecture?: string;
  /** Shorthand inventory; default 16 vCPU, 64 GiB RAM, 1 TiB disk. */
  readonly vcpus?: number;
  readonly ramMb?: number;
  readonly diskGb?: number;
  /** Full inventory (wins over the shorthand). */
  readonly inventory?: Readonly<Record<string, Inventory>>;
  readonly traits?: readonly string[];
  /** Delay per call in ms: one number for all operations or per operation. 0 resolves without a timer. */
  readonly latencyMs?: number | Partial<Record<FakeOperation, number>>;
  /** Failures injected per operation. */
  readonly failures?: Partial<Record<FakeOperation, FakeFailure>>;
  /**
   * How a FAKE live migration behaves: it reports progress every `tickMs` (default 5) and converges
   * after `convergeAfterMs` (default 20; `never`: only a force-complete or an abort ends it).
   */
  readonly liveMigration?: { readonly tickMs?: number; readonly convergeAfterMs?: number | 'never' };
  /** Capabilities (default: everything but attach). */
  readonly capabilities?: Partial<DriverCapabilities>;
  /**
   * File where guests are persisted after every change, so that they outlive the process (crash
   * tests). Loaded at construction if it exists.
   */
  readonly statePath?: string;
  /**
   * Whether `spawn` and `rebuild` acquire the image from the image service first, as a real driver
   * does (a checksum mismatch then fails the build with `reschedule: false`). Default false: the
   * fake needs no image bytes.
   */
  readonly acquireImages?: boolean;
  /**
   * Disk formats the fake can boot (default all). A spawn of another format fails with
   * `reschedule: false`, like a real driver given an image it cannot run.
   */
  readonly diskFormats?: readonly Image['diskFormat'][];
}

/** A FAKE guest: what a hypervisor would know of it. */
export interface FakeGuest {
  powerState: PowerState;
  projectId: string;
  imageId: string;
  boots: number;
  /** vCPUs and memory as the guest sees them (its flavor when created or moved). */
  vcpus?: number;
  ramMb?: number;
  /** Set while rescued: the image booted, the original disk attached beside it. */
  rescueImageId?: string;
  /** Volumes plugged in (at spawn or hot-plugged), by volume id: the guest device they appear as. */
  volumes?: Record<string, string>;
  /** Network interfaces plugged in (at spawn or hot-plugged), by port id: their MAC address (`''` when none). */
  interfaces?: Record<string, string>;
}

/**
 * FAKE driver for tests, demos and benchmarks: no hypervisor, guests are records in memory (or in
 * a state file). Latency, failures and capabilities are configurable; `crash`, `kill` and
 * `addOrphan` simulate what a real hypervisor does behind the engine's back.
 */
export class FakeDriver
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
  readonly kind: string = 'fake';
  /** This fake among the live ones (a migration target names it). */
  readonly fakeId = `fake-${++fakeCount}`;
  /** Copies kept on this host for a revert (resize, cold migration), by instance id. */
  private readonly kept = new Map<string, FakeGuest>();
  private readonly moves: FakeMoves;
  readonly capabilities: DriverCapabilities;
  private readonly subject = new Subject<PowerStateEvent>();
  readonly events$ = this.subject.asObservable();
  private readonly guests = new Map<string, FakeGuest>();
  private readonly failures = new Map<FakeOperation, FakeFailure & { remaining: number }>();
  private readonly hangs = new Map<FakeOperation, 'before' | 'after'>();
  private readonly holds = new Map<FakeOperation, { reach: () => void; gate: Promise<void> }>();
  /** Number of calls per operation (for assertions). */
  readonly calls: Record<string, number> = {};

  constructor(private readonly options: FakeDriverOptions = {}) {
    this.capabilities = defineCapabilities({
      powerControl: true,
      reboot: true,
      pause: true,
      suspend: true,
      rebuild: true,
      snapshot: true,
      consoleOutput: true,
      coldMigration: true,
      liveMigration: true,
      rescue: true,
      volumeAttach: true,
      interfaceAttach: true,
      ...options.capabilities,
    });
    liveFakes.set(this.fakeId, this);
    this.moves = new FakeMoves(
      this,
      {
        guests: this.guests,
        kept: this.kept,
        enter: (op, instance, call) => this.enter(op, instance, call),
        persist: () => this.persist(),
        require: (instance, op) => this.require(instance, op),
        peer: (target) => {
          // a fake of this process, unless the target hands off elsewhere (ids repeat across processes)
          const local = liveFakes.get(target.params.fakeId ?? '');
          const dir = target.params.handoffDir;
          if (local && (!dir || local.moves.handsOffTo(dir))) return local.moves;
          if (dir) return new HandoffPeer(dir);
          throw new DriverError({ driver: this.kind, operation: 'migrate' }, 'no such fake target');
        },
        ...(options.statePath ? { handoffDir: `${options.statePath}.incoming` } : {}),
      },
      options.liveMigration,
    );
    for (const [op, f] of Object.entries(options.failures ?? {})) this.failNext(op as FakeOperation, f);
    if (options.statePath) this.load(options.statePath);
  }

  /** Makes the next `failure.times` calls of `op` fail (every call when `times` is omitted). */
  failNext(op: FakeOperation, failure: FakeFailure = { times: 1 }): void {
    this.failures.set(op, { ...failure, remaining: failure.times ?? Number.POSITIVE_INFINITY });
  }

  /** Removes injected failures and hangs (holds already taken stay until released). */
  clearFailures(): void {
    this.failures.clear();
    this.hangs.clear();
    this.holds.clear();
  }

  /**
   * Makes the next call of `op` hang, `before` or `after` its effect on the guest: the engine then
   * looks as if its process died at that point (crash tests) or as if the hypervisor stopped
   * answering. The call never settles unless its signal aborts; then it rejects with the signal's
   * reason (the effect, if `after`, stays: `destroy` removes it).
   */
  hangNext(op: FakeOperation, when: 'before' | 'after'): void {
    this.hangs.set(op, when);
  }

  /**
   * Holds the next call of `op` once it is counted, before its effect, until the hold is released
   * (then it goes on as usual: its effect, or a failure planned with {@link failNext}). Neither
   * the call's signal nor its deadline ends it: the engine gives up on it, the call still answers
   * when released, as a hypervisor that ignores cancellation does.
   */
  holdNext(op: FakeOperation): FakeHold {
    const { hold, reach, gate } = createHold();
    this.holds.set(op, { reach, gate });
    return hold;
  }

  async getHostReport(): Promise<HostReport> {
    await this.enter('getHostReport');
    const o = this.options;
    return {
      hostname: o.hostname ?? 'fake-host',
      hypervisorType: o.hypervisorType ?? 'fake',
      architecture: o.architecture ?? 'x86_64',
      inventory: o.inventory ?? {
        VCPU: { total: o.vcpus ?? 16, reserved: 0, allocationRatio: 1 },
        MEMORY_MB: { total: o.ramMb ?? 65_536, reserved: 0, allocationRatio: 1 },
        DISK_GB: { total: o.diskGb ?? 1024, reserved: 0, allocationRatio: 1 },
      },
      traits: o.traits ?? [],
    };
  }

  async spawn(request: SpawnRequest): Promise<void> {
    await this.enter('spawn', request.instance, request);
    await this.checkImage('spawn', request);
    throwIfCallAborted(request);
    const i = request.instance;
    this.guests.set(i.id, {
      powerState: 'running',
      projectId: i.projectId,
      imageId: request.image.id,
      boots: 1,
      vcpus: request.flavor.vcpus,
      ramMb: request.flavor.ramMb,
      ...pluggedDevices(request.volumes, request.ports),
    });
    this.persist();
    await this.leave('spawn', request);
  }

  async destroy(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.enter('destroy', instance, options);
    throwIfCallAborted(options);
    const kept = this.guests.has(instance.id) ? false : this.kept.delete(instance.id);
    if (this.guests.delete(instance.id) || kept) this.persist();
    await this.leave('destroy', options);
  }

  async getPowerState(instance: Instance): Promise<PowerState> {
    this.moves.adoptHandoffs();
    return this.guests.get(instance.id)?.powerState ?? 'nostate';
  }

  async listInstances(): Promise<DriverInstance[]> {
    await this.enter('listInstances');
    const listed = [...this.guests].map(([instanceId, g]) => ({
      instanceId,
      powerState: g.powerState,
      projectId: g.projectId,
    }));
    // a copy kept for a revert shows as a powered-off guest, as a real hypervisor lists it
    for (const [instanceId, g] of this.kept) {
      if (!this.guests.has(instanceId))
        listed.push({ instanceId, powerState: 'shutdown', projectId: g.projectId });
    }
    return listed;
  }

  async powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void> {
    await this.transition('powerOff', instance, 'shutdown', options);
  }
  async powerOn(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.transition('powerOn', instance, 'running', options, true);
  }
  async reboot(instance: Instance, _kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void> {
    await this.transition('reboot', instance, 'running', options, true);
  }
  async pause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.transition('pause', instance, 'paused', options);
  }
  async unpause(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.transition('unpause', instance, 'running', options);
  }
  async suspend(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.transition('suspend', instance, 'suspended', options);
  }
  async resume(instance: Instance, options?: DriverCallOptions): Promise<void> {
    await this.transition('resume', instance, 'running', options);
  }
  async rebuild(request: SpawnRequest): Promise<void> {
    await this.enter('rebuild', request.instance, request);
    await this.checkImage('rebuild', request);
    throwIfCallAborted(request);
    const g = this.require(request.instance, 'rebuild');
    g.imageId = (request.image as Image).id;
    g.powerState = 'running';
    g.boots++;
    this.persist();
  }

  /**
   * Captures the FAKE guest into the image service: a small raw image whose bytes describe the
   * guest (instance id and image), with `sourceInstance` set as real drivers set it.
   */
  async snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image> {
    await this.enter('snapshot', instance, options);
    const g = this.require(instance, 'snapshot');
    const bytes = new TextEncoder().encode(
      JSON.stringify({ fakeSnapshotOf: instance.id, imageId: g.imageId }),
    );
    return options.images.import(
      {
        name: options.name,
        diskFormat: 'raw',
        properties: { hypervisorType: 'fake', sourceInstance: instance.id },
      },
      { kind: 'bytes', bytes },
    );
  }

  async getConsoleOutput(instance: Instance): Promise<string> {
    const g = this.require(instance, 'getConsoleOutput');
    return Array.from({ length: g.boots }, (_, n) => `fake boot ${n + 1} of ${instance.id}\n`).join('');
  }

  // ---- moves (driver-moves.ts), simulated by FakeMoves -----------------------------------------

  prepareColdMigrationTarget(instance: Instance, flavor: Flavor, options?: DriverCallOptions) {
    return this.moves.prepareColdMigrationTarget(instance, flavor, options);
  }
  migrateDisksAndPowerOff(instance: Instance, target: MigrationTarget, options?: DriverCallOptions) {
    return this.moves.migrateDisksAndPowerOff(instance, target, options);
  }
  finishMigration(request: FinishMigrationRequest) {
    return this.moves.finishMigration(request);
  }
  confirmMigration(instance: Instance, options?: DriverCallOptions) {
    return this.moves.confirmMigration(instance, options);
  }
  revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions) {
    return this.moves.revertMigrationOnDestination(instance, options);
  }
  finishRevertMigration(instance: Instance, powerOn: boolean, options?: DriverCallOptions) {
    return this.moves.finishRevertMigration(instance, powerOn, options);
  }
  prepareLiveMigrationTarget(instance: Instance, options?: DriverCallOptions) {
    return this.moves.prepareLiveMigrationTarget(instance, options);
  }
  checkLiveMigration(instance: Instance, target: MigrationTarget, options?: DriverCallOptions) {
    return this.moves.checkLiveMigration(instance, target, options);
  }
  liveMigrate(instance: Instance, target: MigrationTarget, options?: LiveMigrationOptions) {
    return this.moves.liveMigrate(instance, target, options);
  }
  abortLiveMigration(instance: Instance) {
    return this.moves.abortLiveMigration(instance);
  }
  forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode) {
    return this.moves.forceCompleteLiveMigration(instance, mode);
  }
  rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions) {
    return this.moves.rollbackLiveMigrationTarget(instance, options);
  }
  rescue(request: RescueRequest) {
    return this.moves.rescue(request);
  }
  unrescue(instance: Instance, options?: DriverCallOptions) {
    return this.moves.unrescue(instance, options);
  }

  /**
   * Plugs the volume in as its requested device (or the next free `vdX`) and resolves that device;
   * attaching a volume that is already plugged in is a no-op (resolving its device), as a
   * hypervisor's idempotent hot-plug would be.
   */
  async attachVolume(instance: Instance, device: BlockDevice): Promise<string> {
    await this.enter('attachVolume', instance);
    const g = this.require(instance, 'attachVolume');
    const volumes = { ...g.volumes };
    const plugged = volumes[device.volumeId];
    if (plugged) return plugged;
    const taken = new Set(Object.values(volumes));
    const name = device.device ?? nextFreeDisk(taken);
    if (taken.has(name))
      throw new DriverError(
        { driver: this.kind, operation: 'attachVolume', instanceId: instance.id, retryable: false },
        `device ${name} is in use`,
      );
    volumes[device.volumeId] = name;
    g.volumes = volumes;
    this.persist();
    await this.leave('attachVolume', undefined);
    return name;
  }

  /** Unplugs the volume; a volume that is not plugged in is a no-op. */
  async detachVolume(instance: Instance, device: BlockDevice): Promise<void> {
    await this.enter('detachVolume', instance);
    const g = this.require(instance, 'detachVolume');
    if (!g.volumes?.[device.volumeId]) return;
    const { [device.volumeId]: _gone, ...rest } = g.volumes;
    g.volumes = rest;
    this.persist();
  }

  /**
   * Plugs the port's interface in; a port already plugged in is a no-op, and a MAC address another
   * interface of the guest has is refused, as a hypervisor would.
   */
  async attachInterface(instance: Instance, port: PortBinding): Promise<void> {
    await this.enter('attachInterface', instance);
    const g = this.require(instance, 'attachInterface');
    const interfaces = { ...g.interfaces };
    if (interfaces[port.portId] !== undefined) return;
    const mac = port.macAddress ?? '';
    if (mac && Object.values(interfaces).includes(mac))
      throw new DriverError(
        { driver: this.kind, operation: 'attachInterface', instanceId: instance.id, retryable: false },
        `MAC address ${mac} is in use`,
      );
    interfaces[port.portId] = mac;
    g.interfaces = interfaces;
    this.persist();
    await this.leave('attachInterface', undefined);
  }

  /** Unplugs the port's interface; one that is not plugged in is a no-op. */
  async detachInterface(instance: Instance, port: PortBinding): Promise<void> {
    await this.enter('detachInterface', instance);
    const g = this.require(instance, 'detachInterface');
    if (g.interfaces?.[port.portId] === undefined) return;
    const { [port.portId]: _gone, ...rest } = g.interfaces;
    g.interfaces = rest;
    this.persist();
  }

  /** The guest as this host knows it (a copy), `undefined` if absent. */
  guest(instanceId: string): Readonly<FakeGuest> | undefined {
    const g = this.guests.get(instanceId);
    return g ? { ...g } : undefined;
  }

  /** Whether this host keeps a copy of the instance for a revert. */
  hasKeptCopy(instanceId: string): boolean {
    return this.kept.has(instanceId);
  }

  /** Live migrations running from this host (their instance ids). */
  get runningMigrations(): readonly string[] {
    return this.moves.running;
  }

  // ---- simulation of the world behind the engine's back ---------------------------------------

  /** The guest stops by itself (crash or kill from outside); emits a power-state event. */
  crash(instanceId: string, powerState: PowerState = 'shutdown'): void {
    const g = this.guests.get(instanceId);
    if (!g) return;
    g.powerState = powerState;
    this.persist();
    this.subject.next({ instanceId, powerState, at: Date.now() });
  }

  /** The guest disappears from the host without the engine; emits `nostate`. */
  vanish(instanceId: string): void {
    if (!this.guests.delete(instanceId)) return;
    this.persist();
    this.subject.next({ instanceId, powerState: 'nostate', at: Date.now() });
  }

  /** Emits a power-state event without changing the guest: a late or duplicated hypervisor event. */
  emitStaleEvent(instanceId: string, powerState: PowerState): void {
    this.subject.next({ instanceId, powerState, at: Date.now() });
  }

  /** A guest the engine does not know appears on the host. */
  addOrphan(instanceId: string, projectId = 'unknown'): void {
    this.guests.set(instanceId, { powerState: 'running', projectId, imageId: 'unknown', boots: 1 });
    this.persist();
  }

  /** The state file, when guests are persisted. */
  get statePath(): string | undefined {
    return this.options.statePath;
  }

  /** Guests on this fake host. */
  get guestCount(): number {
    return this.guests.size;
  }

  /** Whether a guest exists. */
  hasGuest(instanceId: string): boolean {
    return this.guests.has(instanceId);
  }

  async close(): Promise<void> {
    liveFakes.delete(this.fakeId);
    this.moves.close();
    this.subject.complete();
  }

  // ---- internals -----------------------------------------------------------------------------

  private async transition(
    op: FakeOperation,
    instance: Instance,
    to: PowerState,
    options: DriverCallOptions | undefined,
    boot = false,
  ): Promise<void> {
    await this.enter(op, instance, options);
    throwIfCallAborted(options);
    const g = this.require(instance, op);
    g.powerState = to;
    if (boot) g.boots++;
    this.persist();
    await this.leave(op, options);
  }

  /** With `acquireImages` or `diskFormats`: refuses what no host could run, as a real driver does. */
  private async checkImage(op: FakeOperation, request: SpawnRequest): Promise<void> {
    const { image, instance } = request;
    const details = { driver: this.kind, operation: op, instanceId: instance.id };
    const formats = this.options.diskFormats;
    if (formats && !formats.includes(image.diskFormat)) {
      throw new DriverError(
        { ...details, retryable: false, reschedule: false },
        `disk format ${image.diskFormat} is not one of ${formats.join(', ')}`,
      );
    }
    if (!this.options.acquireImages) return;
    try {
      await untilAborted(request.images.acquire(image.id), request.signal);
    } catch (e) {
      throwIfCallAborted(request);
      const bad = isNovaError(e, ErrorCode.ImageChecksum);
      throw new DriverError(
        bad ? { ...details, retryable: false, reschedule: false } : details,
        `image ${image.id}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  private require(instance: Instance, op: string): FakeGuest {
    const g = this.guests.get(instance.id);
    if (!g) {
      throw new DriverError({ driver: this.kind, operation: op, instanceId: instance.id }, 'no such guest');
    }
    return g;
  }

  private async leave(op: FakeOperation, call: DriverCallOptions | undefined): Promise<void> {
    if (this.hangs.get(op) !== 'after') return;
    this.hangs.delete(op);
    await untilAborted(new Promise<never>(() => {}), call?.signal);
  }

  /** Counts the call, then: rejects if aborted, hangs or waits the latency (both abortable), fails if planned. */
  private async enter(op: FakeOperation, instance?: Instance, call?: DriverCallOptions): Promise<void> {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    this.moves.adoptHandoffs();
    throwIfCallAborted(call);
    // the signal is read only to wait on it (the engine makes it on first read)
    if (this.hangs.get(op) === 'before') {
      this.hangs.delete(op);
      await untilAborted(new Promise<never>(() => {}), call?.signal);
    }
    const hold = this.holds.get(op);
    if (hold) {
      this.holds.delete(op);
      hold.reach();
      await hold.gate;
    }
    const latency =
      typeof this.options.latencyMs === 'number' ? this.options.latencyMs : this.options.latencyMs?.[op];
    if (latency) await delay(latency, call?.signal);
    const failure = this.failures.get(op);
    if (failure && failure.remaining > 0 && (!failure.when || failure.when(instance))) {
      failure.remaining--;
      throw new DriverError(
        {
          driver: this.kind,
          operation: op,
          ...(instance ? { instanceId: instance.id } : {}),
          ...(failure.retryable === undefined ? {} : { retryable: failure.retryable }),
          ...(failure.reschedule === undefined ? {} : { reschedule: failure.reschedule }),
        },
        failure.message ?? `injected ${op} failure`,
      );
    }
  }

  private persist(): void {
    if (!this.options.statePath) return;
    const tmp = `${this.options.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify([...this.guests]));
    renameSync(tmp, this.options.statePath);
  }

  private load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    for (const [id, g] of JSON.parse(text) as Array<[string, FakeGuest]>) this.guests.set(id, g);
  }
}
