import type { MigrationTarget } from '@nova-lfs/core/ports';
import { KvmLiveMigrationRefusedError } from './live-migration-errors.js';

/** What a KVM destination tells the source in {@link MigrationTarget.params}. */
export interface KvmMigrationTargetParams {
  /** libvirt URI of the destination's libvirtd, as the source reaches it. */
  readonly uri: string;
  /** The destination's metadata scope (the domain's `<nova:host>` there). */
  readonly hostId: string;
  /** The instance's directory on the destination (console log, disks). */
  readonly instanceDir: string;
  /** QEMU's migration stream URI, e.g. `tcp://127.0.0.1` (port picked from the destination's range) or `tcp://127.0.0.1:49400`. */
  readonly migrateUri: string;
  /** Where the destination's QEMU listens for the stream, e.g. `127.0.0.1`. */
  readonly listenAddress: string;
  /** A file the destination wrote in `instanceDir`; the source finds it there only on shared storage. */
  readonly storageProbe: string;
  /** The probe file's content. */
  readonly storageToken: string;
}

const FIELDS = [
  'uri',
  'hostId',
  'instanceDir',
  'migrateUri',
  'listenAddress',
  'storageProbe',
  'storageToken',
] as const satisfies readonly (keyof KvmMigrationTargetParams)[];

/** The params as the plain string record {@link MigrationTarget.params} carries. */
export function encodeTargetParams(p: KvmMigrationTargetParams): Record<string, string> {
  return Object.fromEntries(FIELDS.map((f) => [f, p[f]]));
}

/**
 * Reads a KVM destination's params back.
 * @throws KvmLiveMigrationRefusedError `driver-kind` for a non-KVM target, `invalid-target` naming a
 *   missing or empty field.
 */
export function decodeTargetParams(target: MigrationTarget, instanceId?: string): KvmMigrationTargetParams {
  if (target.driverKind !== 'kvm')
    throw new KvmLiveMigrationRefusedError(
      'checkLiveMigration',
      'driver-kind',
      `the destination ${target.hostId} is a ${target.driverKind} host, not kvm`,
      { ...(instanceId ? { instanceId } : {}), destinationHostId: target.hostId },
    );
  const out: Record<string, string> = {};
  for (const f of FIELDS) {
    const v = target.params[f];
    if (typeof v !== 'string' || v === '')
      throw new KvmLiveMigrationRefusedError(
        'checkLiveMigration',
        'invalid-target',
        `the migration target of host ${target.hostId} has no ${f}`,
        { ...(instanceId ? { instanceId } : {}), field: `params.${f}`, destinationHostId: target.hostId },
      );
    out[f] = v;
  }
  return out as unknown as KvmMigrationTargetParams;
}
