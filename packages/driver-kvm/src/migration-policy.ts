import type { LiveMigrationOptions } from '@nova-lfs/core/ports';
import { MigrateFlags, type MigrateOptions } from '@nova-lfs/libvirt';
import type { KvmMigrationTargetParams } from './migration-target.js';

/** How the guest's storage moves with it. */
export type StorageMode =
  /** No writable disk (direct kernel boot from read-only files): nothing to move. */
  | 'none'
  /**
   * The destination's instance directory is on the source's filesystem (shared storage): the
   * files are hard-linked there (same inode, no copy) and libvirt is told the migration is safe
   * anyway (`VIR_MIGRATE_UNSAFE`: it cannot prove a local filesystem is shared).
   */
  | 'shared';

/**
 * libvirt's flags of a live migration with `allowPostCopy` and `storage`, as Nova's libvirt
 * driver sets them: live, the definition persisted on the destination and removed from the
 * source (so only one host ever owns the guest), `ABORT_ON_ERROR` (a disk I/O error aborts
 * instead of pausing the guest); `POSTCOPY` only when the caller may switch to post-copy later
 * (it must be given at the start); `UNSAFE` for shared storage (see {@link StorageMode}).
 * Managed direct migration (no `PEER2PEER`): this process drives both libvirtds.
 */
export function migrationFlags(o: { allowPostCopy?: boolean; storage: StorageMode }): number {
  let f =
    MigrateFlags.Live | MigrateFlags.PersistDest | MigrateFlags.UndefineSource | MigrateFlags.AbortOnError;
  if (o.allowPostCopy) f |= MigrateFlags.Postcopy;
  if (o.storage === 'shared') f |= MigrateFlags.Unsafe;
  return f;
}

/**
 * The typed parameters of `virDomainMigrate3`: the migration stream on the destination's
 * `migrate_uri` / `listen_address` (loopback here), the bandwidth cap, and the destination's own
 * live and persistent XML (its host id and instance directory).
 */
export function migrationParameters(
  target: KvmMigrationTargetParams,
  o: {
    readonly allowPostCopy?: LiveMigrationOptions['allowPostCopy'];
    readonly bandwidthMiBps?: LiveMigrationOptions['bandwidthMiBps'];
    storage: StorageMode;
    destinationXml: string;
    persistentXml: string;
  },
): MigrateOptions {
  return {
    flags: migrationFlags(o),
    migrateUri: target.migrateUri,
    listenAddress: target.listenAddress,
    destinationXml: o.destinationXml,
    persistentXml: o.persistentXml,
    ...(o.bandwidthMiBps !== undefined ? { bandwidthMiBs: Math.max(1, Math.round(o.bandwidthMiBps)) } : {}),
  };
}
