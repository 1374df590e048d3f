import { DriverError, type DriverErrorDetails } from '@nova-lfs/core';

/**
 * Why a live migration was refused before it started (or why a call on a running one was):
 * - `guest-missing`: no domain of the instance on the source;
 * - `not-running`: the guest is neither running nor paused;
 * - `driver-kind`: the destination is not a KVM host;
 * - `invalid-target`: the destination's parameters lack a field (named in `field`);
 * - `destination-unreachable`: the destination's libvirtd did not answer;
 * - `same-host`: both ends are the same libvirtd (same host UUID);
 * - `exists-on-destination`: a domain with the instance's UUID already exists there;
 * - `arch-unsupported`: the destination's hypervisor offers no guest of this arch and virt type;
 * - `cpu-incompatible`: the destination cannot provide the guest's CPU (libvirt says which features);
 * - `shared-storage-missing`: the guest has local disks and the destination's instance directory
 *   is not visible from the source (no shared storage; copying disks is not supported);
 * - `no-migration`: abort or force-complete while no migration of the instance runs here;
 * - `already-migrating`: a migration of the instance runs here already;
 * - `postcopy-not-allowed`: post-copy asked of a migration started without `allowPostCopy`.
 */
export type LiveMigrationRefusal =
  | 'guest-missing'
  | 'not-running'
  | 'driver-kind'
  | 'invalid-target'
  | 'destination-unreachable'
  | 'same-host'
  | 'exists-on-destination'
  | 'arch-unsupported'
  | 'cpu-incompatible'
  | 'shared-storage-missing'
  | 'no-migration'
  | 'already-migrating'
  | 'postcopy-not-allowed';

/** Details of a {@link KvmLiveMigrationRefusedError}. */
export interface LiveMigrationRefusedDetails extends DriverErrorDetails {
  readonly reason: LiveMigrationRefusal;
  /** The migration-target parameter at fault (`invalid-target`). */
  readonly field?: string;
  /** The destination host's id in the engine, when known. */
  readonly destinationHostId?: string;
}

/**
 * A live migration of a KVM guest was refused, nothing was changed: a `DriverError` (code
 * `NLFS_DRIVER_ERROR`, not retryable) whose `details.reason` says why ({@link LiveMigrationRefusal})
 * and whose message says it in words (e.g. the CPU features the destination lacks).
 */
export class KvmLiveMigrationRefusedError extends DriverError {
  declare readonly details: LiveMigrationRefusedDetails;

  constructor(
    operation: string,
    reason: LiveMigrationRefusal,
    message: string,
    extra: { instanceId?: string; field?: string; destinationHostId?: string; cause?: unknown } = {},
  ) {
    const { cause, ...rest } = extra;
    const details: LiveMigrationRefusedDetails = {
      driver: 'kvm',
      operation,
      retryable: false,
      reason,
      ...rest,
    };
    super(details, message, cause === undefined ? undefined : { cause });
  }
}

/** Whether `e` is a {@link KvmLiveMigrationRefusedError}, optionally for `reason`. */
export function isLiveMigrationRefused(
  e: unknown,
  reason?: LiveMigrationRefusal,
): e is KvmLiveMigrationRefusedError {
  return e instanceof KvmLiveMigrationRefusedError && (reason === undefined || e.details.reason === reason);
}
