/**
 * `@nova-lfs/core/ports`: for driver, store and scheduler authors: the ports (driver, stores, unit
 * of work, event log, leases, scheduler, quota, image, network, volume), their DI tokens, the
 * driver capability helpers and type guards, `registerCore`, and the memory implementations.
 * Embedders need only `@nova-lfs/core`.
 * @packageDocumentation
 */
import 'reflect-metadata';

export { type CoreStores, registerCore, type SchedulerDeps } from './compose/register-core.js';
export { createToken, provideValue, resolveToken, type Token } from './di/token.js';
export {
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
  networkAdapterToken,
  quotaToken,
  schedulerToken,
  serverGroupStoreToken,
  unitOfWorkToken,
  volumeAdapterToken,
} from './di/tokens.js';
export { HostRegistry, hostFromReport } from './engine/host-registry.js';
export { KeyedMutex } from './engine/keyed-mutex.js';
export { noNetworkAdapter, noVolumeAdapter } from './engine/noop-adapters.js';
export { type DefaultImageServiceOptions, defaultImageService } from './image/default-image-service.js';
export { abortableDelay, InflightWork, reasonIfAborted, untilAborted } from './ports/abort-helpers.js';
export {
  type ConsoleReadable,
  callAbortState,
  defineCapabilities,
  type InterfaceAttachable,
  noCapabilities,
  type Pausable,
  type PowerControl,
  type Rebootable,
  type Rebuildable,
  type Snapshottable,
  type Suspendable,
  supportsConsoleOutput,
  supportsInterfaceAttach,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsRebuild,
  supportsSnapshot,
  supportsSuspend,
  supportsVolumeAttach,
  throwIfCallAborted,
  type VolumeAttachable,
} from './ports/driver.js';
export {
  type ColdMigratable,
  type FinishMigrationRequest,
  type ForceCompleteMode,
  type LiveMigratable,
  type LiveMigrationOptions,
  type LiveMigrationProgress,
  type LiveMigrationResult,
  type MigratedDisks,
  type MigrationTarget,
  type Rescuable,
  type RescueRequest,
  supportsColdMigration,
  supportsLiveMigration,
  supportsRescue,
} from './ports/driver-moves.js';
export type { ImageLocation } from './ports/image-service.js';
export type {
  ClaimChange,
  ClaimChangeFeed,
  ClaimGroup,
  GroupMemberClaim,
  PlacementGroup,
  Scheduler,
} from './ports/scheduler.js';
export { type DurableStorage, parseStorageOption, storageOptionSchema } from './ports/storage.js';
export type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  InstanceStore,
  MigrationStore,
  ServerGroupStore,
} from './ports/stores.js';
export type { EventLog, Lease, LeaseStore, StoreWrite, UnitOfWork } from './ports/unit-of-work.js';
export { CountingQuotaEngine } from './quota/counting-quota-engine.js';
export { MemoryActionStore } from './store/memory-action-store.js';
export { MemoryClaimStore } from './store/memory-claim-store.js';
export { MemoryEventLog } from './store/memory-event-log.js';
export { MemoryFlavorStore } from './store/memory-flavor-store.js';
export { MemoryHostStore } from './store/memory-host-store.js';
export { MemoryImageStore } from './store/memory-image-store.js';
export { MemoryInstanceStore } from './store/memory-instance-store.js';
export { MemoryLeaseStore } from './store/memory-lease-store.js';
export { MemoryMigrationStore, migrationMatches } from './store/memory-migration-store.js';
export { MemoryServerGroupStore } from './store/memory-server-group-store.js';
export { MemoryUnitOfWork, type MemoryUnitStores } from './store/memory-unit-of-work.js';
