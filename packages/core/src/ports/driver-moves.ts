import type { Flavor } from '../model/flavor.js';
import type { Image } from '../model/image.js';
import type { Instance } from '../model/instance.js';
import type { ComputeDriver, DriverCallOptions } from './driver.js';
import type { ImageService } from './image-service.js';
import type { BlockDevice } from './volume.js';

/**
 * Driver ports for moving and changing instances (issue 15): live migration, cold migration and
 * resize, rescue. Each is optional, gated by a capability flag and detected with the type guards
 * at the end of this file, as the other optional ports in `driver.ts`.
 *
 * The engine drives these calls as Nova's conductor and compute managers do: it schedules and
 * claims the destination, calls the destination's driver to prepare, the source's to move, and
 * records a migration (source, destination, status, progress) for every move.
 */

/** How the source's driver reaches the destination: made by the destination's driver. */
export interface MigrationTarget {
  /** The destination host's id in the engine. */
  readonly hostId: string;
  /** The destination driver's kind; the engine refuses a move between different kinds. */
  readonly driverKind: string;
  /** True when source and destination are the same host (a resize in place). */
  readonly sameHost: boolean;
  /**
   * Driver-specific connection details, e.g. for libvirt the destination's connection URI and the
   * `migrate_uri` / `listen_address` of the migration stream. Opaque to the engine; plain strings so
   * that it crosses the agent protocol unchanged.
   */
  readonly params: Readonly<Record<string, string>>;
}

/** Progress of a running live migration, as the hypervisor's job statistics report it. */
export interface LiveMigrationProgress {
  /** `precopy` until a switch to post-copy, then `postcopy`. */
  readonly phase: 'precopy' | 'postcopy';
  readonly elapsedMs: number;
  readonly dataTotalBytes?: number;
  readonly dataProcessedBytes?: number;
  readonly dataRemainingBytes?: number;
  /** Guest memory dirtied per second (bytes). */
  readonly dirtyRateBytesPerSecond?: number;
  /** Expected downtime while running; the measured one once complete. */
  readonly downtimeMs?: number;
}

/** What a finished live migration measured. */
export interface LiveMigrationResult {
  /** Wall time from start to the guest running on the destination. */
  readonly totalMs: number;
  /** The guest's pause at switch-over, from the hypervisor's completed-job statistics. */
  readonly downtimeMs?: number;
  /** True if it completed in post-copy. */
  readonly postCopy: boolean;
}

/** Options of {@link LiveMigratable.liveMigrate}. */
export interface LiveMigrationOptions extends DriverCallOptions {
  /** Called with the job's progress (at least once a second while it runs). */
  readonly onProgress?: (progress: LiveMigrationProgress) => void;
  /** Maximum downtime allowed at switch-over to start with (ms). */
  readonly maxDowntimeMs?: number;
  /** Bandwidth cap of the migration stream (MiB/s); unlimited when omitted. */
  readonly bandwidthMiBps?: number;
  /** Start the migration so that it may later switch to post-copy. */
  readonly allowPostCopy?: boolean;
}

/** How {@link LiveMigratable.forceCompleteLiveMigration} finishes a migration that does not converge. */
export type ForceCompleteMode =
  /** Switch to post-copy: the guest runs on the destination at once, pages follow on demand. */
  | { readonly kind: 'postcopy' }
  /** Raise the allowed downtime so that pre-copy can switch over. */
  | { readonly kind: 'downtime'; readonly downtimeMs: number };

/**
 * Live migration between two hosts of the same driver kind: the guest keeps running.
 * On the destination: {@link prepareLiveMigrationTarget} (and {@link rollbackLiveMigrationTarget} if
 * it fails); on the source: {@link checkLiveMigration}, then {@link liveMigrate}.
 */
export interface LiveMigratable {
  /** Destination side: prepares to receive `instance` and says how to reach this host. */
  prepareLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<MigrationTarget>;
  /**
   * Source side: refuses early, with a typed error whose message says why (CPU incompatible, shared
   * storage missing, guest not running), when the guest cannot move to `target`.
   */
  checkLiveMigration(instance: Instance, target: MigrationTarget, options?: DriverCallOptions): Promise<void>;
  /**
   * Source side: moves the running guest; resolves once it runs on the destination and is gone from
   * the source. On failure or abort it rejects and leaves the guest running on the source.
   */
  liveMigrate(
    instance: Instance,
    target: MigrationTarget,
    options?: LiveMigrationOptions,
  ): Promise<LiveMigrationResult>;
  /** Source side: aborts the running migration of `instance`; the guest stays on the source. */
  abortLiveMigration(instance: Instance): Promise<void>;
  /** Source side: finishes a running migration that does not converge (see {@link ForceCompleteMode}). */
  forceCompleteLiveMigration(instance: Instance, mode: ForceCompleteMode): Promise<void>;
  /** Destination side: removes whatever a failed or aborted migration left here. Idempotent. */
  rollbackLiveMigrationTarget(instance: Instance, options?: DriverCallOptions): Promise<void>;
}

/** The guest's disks as the source hands them to the destination of a cold migration or resize. */
export interface MigratedDisks {
  /**
   * Driver-specific description (e.g. paths of copied disk files readable by the destination).
   * Plain strings so that it crosses the agent protocol unchanged.
   */
  readonly params: Readonly<Record<string, string>>;
}

/** What the destination's driver needs to finish a cold migration or resize. */
export interface FinishMigrationRequest extends DriverCallOptions {
  readonly instance: Instance;
  /** The flavor after the move (the new one for a resize, the same for a cold migration). */
  readonly flavor: Flavor;
  readonly image: Image;
  readonly images: ImageService;
  readonly disks: MigratedDisks;
  /** Start the guest (it was running before the move). */
  readonly powerOn: boolean;
  readonly volumes: readonly BlockDevice[];
}

/**
 * Cold migration and resize, as Nova's libvirt driver does them: the source powers the guest off and
 * hands its disks over, the destination (possibly the same host) re-creates the guest with the new
 * flavor; the source keeps its copy until the move is confirmed, so that a revert can bring it back.
 */
export interface ColdMigratable {
  /** Destination side: prepares to receive `instance` (e.g. says where disks go). */
  prepareColdMigrationTarget(
    instance: Instance,
    flavor: Flavor,
    options?: DriverCallOptions,
  ): Promise<MigrationTarget>;
  /** Source side: powers the guest off, keeps it for a revert, and hands its disks to `target`. */
  migrateDisksAndPowerOff(
    instance: Instance,
    target: MigrationTarget,
    options?: DriverCallOptions,
  ): Promise<MigratedDisks>;
  /** Destination side: creates the guest from `disks` with `flavor`; starts it if `powerOn`. */
  finishMigration(request: FinishMigrationRequest): Promise<void>;
  /** Source side: deletes the copy kept for a revert. Idempotent. */
  confirmMigration(instance: Instance, options?: DriverCallOptions): Promise<void>;
  /**
   * Destination side of a revert: removes the new guest. For a resize in place this must not touch
   * the copy kept for the revert. Idempotent.
   */
  revertMigrationOnDestination(instance: Instance, options?: DriverCallOptions): Promise<void>;
  /** Source side of a revert: brings the kept copy back with its old flavor; starts it if `powerOn`. */
  finishRevertMigration(instance: Instance, powerOn: boolean, options?: DriverCallOptions): Promise<void>;
}

/** What {@link Rescuable.rescue} boots. */
export interface RescueRequest extends DriverCallOptions {
  readonly instance: Instance;
  readonly flavor: Flavor;
  /** The rescue image (the instance's own image when the user names none). */
  readonly rescueImage: Image;
  readonly images: ImageService;
}

/** Rescue: boot a rescue image with the original disk attached as a second disk; unrescue undoes it. */
export interface Rescuable {
  rescue(request: RescueRequest): Promise<void>;
  unrescue(instance: Instance, options?: DriverCallOptions): Promise<void>;
}

function has<K extends string>(d: object, ...methods: K[]): d is Record<K, (...a: never[]) => unknown> {
  return methods.every((m) => typeof (d as Record<string, unknown>)[m] === 'function');
}

/** Driver can live-migrate (capability on and methods present). */
export function supportsLiveMigration(d: ComputeDriver): d is ComputeDriver & LiveMigratable {
  return (
    d.capabilities.liveMigration &&
    has(
      d,
      'prepareLiveMigrationTarget',
      'checkLiveMigration',
      'liveMigrate',
      'abortLiveMigration',
      'forceCompleteLiveMigration',
      'rollbackLiveMigrationTarget',
    )
  );
}

/** Driver can cold-migrate and resize (capability on and methods present). */
export function supportsColdMigration(d: ComputeDriver): d is ComputeDriver & ColdMigratable {
  return (
    d.capabilities.coldMigration &&
    has(
      d,
      'prepareColdMigrationTarget',
      'migrateDisksAndPowerOff',
      'finishMigration',
      'confirmMigration',
      'revertMigrationOnDestination',
      'finishRevertMigration',
    )
  );
}

/** Driver can rescue (capability on and methods present). */
export function supportsRescue(d: ComputeDriver): d is ComputeDriver & Rescuable {
  return d.capabilities.rescue && has(d, 'rescue', 'unrescue');
}
