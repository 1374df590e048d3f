/**
 * `@nova-lfs/driver-kvm`: virtual machines through libvirt and QEMU/KVM.
 * @packageDocumentation
 */
export type { DiskSpec, DomainSpec, InstanceMetadata } from './domain-spec.js';
export { buildDomainXml, NOVA_LFS_XML_NS, parseInstanceMetadata } from './domain-xml.js';
export {
  isNoDomain,
  KvmErrorCode,
  type KvmFailureClass,
  KvmScopeConflictError,
  LibvirtBindingUnavailableError,
  LibvirtUnreachableError,
  libvirtRetryable,
  UnsupportedImageError,
  wrapLibvirtError,
} from './errors.js';
export { KvmDriver, type KvmDriverOptions, kvmCapabilities } from './kvm-driver.js';
export {
  defaultLibvirtConnector,
  LIBVIRT_MODULE,
  type LibvirtConnector,
  openLibvirt,
} from './libvirt-binding.js';
export { KvmLiveMigration, type KvmLiveMigrationOptions } from './live-migration.js';
export {
  isLiveMigrationRefused,
  KvmLiveMigrationRefusedError,
  type LiveMigrationRefusal,
  type LiveMigrationRefusedDetails,
} from './live-migration-errors.js';
export { migrationFlags, migrationParameters, type StorageMode } from './migration-policy.js';
export { type HostCapabilities, type PrecheckFailure, parseCapabilities } from './migration-precheck.js';
export { downtimeFromCompletedStats, progressFromJobStats } from './migration-progress.js';
export { decodeTargetParams, encodeTargetParams, type KvmMigrationTargetParams } from './migration-target.js';
export { type DomainMoveFacts, domainMoveFacts, retargetDomainXml } from './migration-xml.js';
export { powerStateOfDomain, powerStateOfEvent } from './power-state.js';
export { createOverlay } from './qemu-img.js';
export { kvmDriverToken, registerKvmDriver } from './register.js';
