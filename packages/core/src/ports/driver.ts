import type { Observable } from 'rxjs';
import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import type { Inventory } from '../model/resources.js';
import type { PowerState } from '../model/states.js';
import type { ImageService } from './image-service.js';
import type { PortBinding } from './network.js';
import type { BlockDevice } from './volume.js';

/**
 * What a driver can do beyond the required interface. Every flag is off by default; a driver
 * declares its own with `defineCapabilities({...}) satisfies DriverCapabilities`. The engine
 * refuses an action whose capability is off with `CapabilityUnsupportedError` before changing state.
 */
export interface DriverCapabilities {
  /** Power off and power on (implements {@link PowerControl}). */
  readonly powerControl: boolean;
  /** Soft and hard reboot (implements {@link Rebootable}). */
  readonly reboot: boolean;
  /** Pause and unpause: freeze in memory (implements {@link Pausable}). */
  readonly pause: boolean;
  /** Suspend and resume: save state to disk (implements {@link Suspendable}). */
  readonly suspend: boolean;
  /** Rebuild in place with a new image (implements {@link Rebuildable}). */
  readonly rebuild: boolean;
  /** Snapshot into the image service (implements {@link Snapshottable}). */
  readonly snapshot: boolean;
  /** Attach and detach volumes while running (implements {@link VolumeAttachable}). */
  readonly volumeAttach: boolean;
  /** Attach and detach network interfaces while running (implements {@link InterfaceAttachable}). */
  readonly interfaceAttach: boolean;
  /** Live migration between hosts of the same driver (implements `LiveMigratable`, driver-moves.ts). */
  readonly liveMigration: boolean;
  /** Cold migration and resize (implements `ColdMigratable`, driver-moves.ts). */
  readonly coldMigration: boolean;
  /** Rescue and unrescue (implements `Rescuable`, driver-moves.ts). */
  readonly rescue: boolean;
  /** Console output (implements {@link ConsoleReadable}). */
  readonly consoleOutput: boolean;
}

/** Every capability off. */
export const noCapabilities: DriverCapabilities = Object.freeze({
  powerControl: false,
  reboot: false,
  pause: false,
  suspend: false,
  rebuild: false,
  snapshot: false,
  volumeAttach: false,
  interfaceAttach: false,
  liveMigration: false,
  coldMigration: false,
  rescue: false,
  consoleOutput: false,
});

/** Builds a frozen capabilities record: the given flags on, everything else off. */
export function defineCapabilities(on: Partial<DriverCapabilities>): DriverCapabilities {
  return Object.freeze({ ...noCapabilities, ...on });
}

/** What a driver reports about its host for the scheduler. */
export interface HostReport {
  /** Host name as the hypervisor knows it. */
  readonly hostname: string;
  /** `qemu`, `kvm`, `docker`, `lxc`, `xen`, `hyperv`, `fake`. */
  readonly hypervisorType: string;
  /** CPU architecture, e.g. `x86_64`. */
  readonly architecture: string;
  /** Inventory per resource class (VCPU, MEMORY_MB, DISK_GB, CUSTOM_*). */
  readonly inventory: Readonly<Record<string, Inventory>>;
  /** Traits the hypervisor detects (e.g. `COMPUTE_STATUS_ENABLED`, `HW_CPU_X86_AVX2`). */
  readonly traits: readonly string[];
}

/**
 * What the engine passes with every driver call: the task's cancellation signal. The signal is
 * aborted when the call passes its deadline (the reason is a `DeadlineExceededError`) or when a
 * delete stops the task (the reason is a `BuildAbortedError`). A driver stops waiting as soon as it
 * can, rejects with the signal's reason, and leaves what it can clean (the engine destroys the
 * guest afterwards in any case).
 */
export interface DriverCallOptions {
  /**
   * The call's signal. The engine makes it on first read (an AbortSignal is not cheap): a driver
   * that will not wait need not read it, and asks {@link throwIfCallAborted} instead.
   */
  readonly signal?: AbortSignal;
  /** The engine's cheap abort check (see {@link throwIfCallAborted}): the abort reason, or undefined. */
  readonly [callAbortState]?: () => unknown;
}

/**
 * Key of the engine's cheap abort check on {@link DriverCallOptions} (a global symbol, so two
 * copies of the package agree).
 */
export const callAbortState: unique symbol = Symbol.for('nova-lfs.callAbortState') as never;

/**
 * Throws the call's abort reason if it was aborted (deadline passed, task cancelled), without
 * making the engine's signal when the engine passed its cheap check; other callers' signals are
 * read as usual.
 */
export function throwIfCallAborted(options: DriverCallOptions | undefined): void {
  if (!options) return;
  if (options[callAbortState]) {
    const reason = options[callAbortState]();
    if (reason !== undefined) throw reason;
    return;
  }
  options.signal?.throwIfAborted();
}

/** Everything a driver needs to spawn an instance. */
export interface SpawnRequest extends DriverCallOptions {
  /** The instance (state `building`, task `spawning`, `hostId` set to this host). */
  readonly instance: Instance;
  readonly flavor: Flavor;
  readonly image: Image;
  /** Ask it for a local, sha256-verified artifact of the image (fetched once, then cached). */
  readonly images: ImageService;
  /** Ports allocated by the NetworkAdapter (empty without one). */
  readonly ports: readonly PortBinding[];
  /** Volumes prepared by the VolumeAdapter (empty without one). */
  readonly volumes: readonly BlockDevice[];
}

/** A guest as the hypervisor lists it. */
export interface DriverInstance {
  /** Instance uuid the driver tagged the guest with. */
  readonly instanceId: string;
  readonly powerState: PowerState;
  /** Project tag, when the driver stores one. */
  readonly projectId?: string;
}

/** A power-state change observed by the driver (not caused by the engine's own calls). */
export interface PowerStateEvent {
  readonly instanceId: string;
  readonly powerState: PowerState;
  /** Epoch milliseconds. */
  readonly at: number;
}

/**
 * The required driver contract: the minimum to run instances on one host. Optional operations
 * are separate interfaces, detected with the type guards below and gated by `capabilities`.
 *
 * All operations are keyed by instance uuid. `destroy` is idempotent. Errors are thrown as
 * `DriverError` with the engine's error kept as `cause`.
 */
export interface ComputeDriver {
  /** Driver kind, e.g. `docker`, `kvm`, `fake`. */
  readonly kind: string;
  readonly capabilities: DriverCapabilities;
  /** Hot stream of power-state changes the driver observes on its own (crashes, kills). */
  readonly events$: Observable<PowerStateEvent>;
  /** Host resources and traits, read from the hypervisor. */
  getHostReport(): Promise<HostReport>;
  /** Creates and starts the guest; resolves once it runs. On failure leaves nothing behind if it can. */
  spawn(request: SpawnRequest): Promise<void>;
  /** Removes the guest and everything it owns on the host. Resolves if it does not exist. */
  destroy(instance: Instance, options?: DriverCallOptions): Promise<void>;
  /** Current power state; `nostate` when the guest does not exist. */
  getPowerState(instance: Instance): Promise<PowerState>;
  /** Every guest this driver manages on the host, for reconciliation after a crash. */
  listInstances(): Promise<DriverInstance[]>;
  /** Releases connections and timers. Guests keep running. */
  close?(): Promise<void>;
}

/** Power off and on. */
export interface PowerControl {
  /** Graceful shutdown within `timeoutMs`, then forced. */
  powerOff(instance: Instance, options?: DriverCallOptions & { timeoutMs?: number }): Promise<void>;
  powerOn(instance: Instance, options?: DriverCallOptions): Promise<void>;
}
/** Soft (guest-cooperative) and hard (reset) reboot. */
export interface Rebootable {
  reboot(instance: Instance, kind: 'soft' | 'hard', options?: DriverCallOptions): Promise<void>;
}
/** Freeze and thaw in memory. */
export interface Pausable {
  pause(instance: Instance, options?: DriverCallOptions): Promise<void>;
  unpause(instance: Instance, options?: DriverCallOptions): Promise<void>;
}
/** Save to disk and restore. */
export interface Suspendable {
  suspend(instance: Instance, options?: DriverCallOptions): Promise<void>;
  resume(instance: Instance, options?: DriverCallOptions): Promise<void>;
}
/** Re-create the guest from a new image, keeping its identity. */
export interface Rebuildable {
  rebuild(request: SpawnRequest): Promise<void>;
}
/** Capture the guest's disk into the image service. */
export interface Snapshottable {
  snapshot(
    instance: Instance,
    options: DriverCallOptions & { name: string; images: ImageService },
  ): Promise<Image>;
}
/** Hot-plug volumes. */
export interface VolumeAttachable {
  /**
   * Plugs the volume in; resolves the guest device it got (`vdc`) when the driver chose or knows
   * it, which the engine then records (Nova's reserved device name).
   */
  attachVolume(instance: Instance, device: BlockDevice): Promise<string | undefined>;
  detachVolume(instance: Instance, device: BlockDevice): Promise<void>;
}
/** Hot-plug network interfaces. */
export interface InterfaceAttachable {
  attachInterface(instance: Instance, port: PortBinding): Promise<void>;
  detachInterface(instance: Instance, port: PortBinding): Promise<void>;
}
/** Console output (serial log, container logs). */
export interface ConsoleReadable {
  /** The last `lines` lines (all when omitted) as text. */
  getConsoleOutput(instance: Instance, options?: { lines?: number }): Promise<string>;
}

function has<K extends string>(d: object, ...methods: K[]): d is Record<K, (...a: never[]) => unknown> {
  return methods.every((m) => typeof (d as Record<string, unknown>)[m] === 'function');
}

/** Driver has power control (capability on and methods present). */
export function supportsPowerControl(d: ComputeDriver): d is ComputeDriver & PowerControl {
  return d.capabilities.powerControl && has(d, 'powerOff', 'powerOn');
}
/** Driver can reboot. */
export function supportsReboot(d: ComputeDriver): d is ComputeDriver & Rebootable {
  return d.capabilities.reboot && has(d, 'reboot');
}
/** Driver can pause. */
export function supportsPause(d: ComputeDriver): d is ComputeDriver & Pausable {
  return d.capabilities.pause && has(d, 'pause', 'unpause');
}
/** Driver can suspend. */
export function supportsSuspend(d: ComputeDriver): d is ComputeDriver & Suspendable {
  return d.capabilities.suspend && has(d, 'suspend', 'resume');
}
/** Driver can rebuild. */
export function supportsRebuild(d: ComputeDriver): d is ComputeDriver & Rebuildable {
  return d.capabilities.rebuild && has(d, 'rebuild');
}
/** Driver can snapshot. */
export function supportsSnapshot(d: ComputeDriver): d is ComputeDriver & Snapshottable {
  return d.capabilities.snapshot && has(d, 'snapshot');
}
/** Driver can hot-plug volumes. */
export function supportsVolumeAttach(d: ComputeDriver): d is ComputeDriver & VolumeAttachable {
  return d.capabilities.volumeAttach && has(d, 'attachVolume', 'detachVolume');
}
/** Driver can hot-plug interfaces. */
export function supportsInterfaceAttach(d: ComputeDriver): d is ComputeDriver & InterfaceAttachable {
  return d.capabilities.interfaceAttach && has(d, 'attachInterface', 'detachInterface');
}
/** Driver can read console output. */
export function supportsConsoleOutput(d: ComputeDriver): d is ComputeDriver & ConsoleReadable {
  return d.capabilities.consoleOutput && has(d, 'getConsoleOutput');
}
