/**
 * `@nova-lfs/core`: the model, ports, lifecycle engine, quota, stores and image cache of Nova LFS.
 * @packageDocumentation
 */
import 'reflect-metadata';

// implementations
export { type ComputeOptions, createCompute } from './compose/create-compute.js';
export {
  type CoreOptions,
  type CoreStores,
  registerCore,
  type SchedulerDeps,
} from './compose/register-core.js';
// DI
export { createToken, provideValue, resolveToken, type Token } from './di/token.js';
export {
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
} from './di/tokens.js';
// engine
export { ComputeEngine } from './engine/compute-engine.js';
export { defaultEngineOptions, type EngineOptions } from './engine/engine-options.js';
export type {
  InstanceActionEvent,
  InstanceCreatedEvent,
  InstanceDeletedEvent,
  InstanceEvent,
  InstanceEventType,
  InstanceFaultEvent,
  InstanceOrphanEvent,
  InstanceRescheduledEvent,
  InstanceScheduledEvent,
  InstanceStateEvent,
  InstanceStates,
} from './engine/events.js';
export { type HostBinding, HostRegistry, hostFromReport } from './engine/host-registry.js';
export { KeyedMutex } from './engine/keyed-mutex.js';
export { noNetworkAdapter, noVolumeAdapter } from './engine/noop-adapters.js';
export type { ReconcileReport } from './engine/reconciler.js';
export {
  BuildAbortedError,
  CapabilityUnsupportedError,
  ClaimConflictError,
  ConfigurationError,
  DeadlineExceededError,
  DriverError,
  type DriverErrorDetails,
  DuplicateError,
  EngineClosedError,
  ErrorCode,
  type FieldIssue,
  ImageChecksumError,
  type InvalidStateDetails,
  InvalidStateError,
  isNovaError,
  NotFoundError,
  type NoValidHostDetails,
  NoValidHostError,
  NovaError,
  type QuotaExceededDetails,
  QuotaExceededError,
  RevisionConflictError,
  ValidationError,
} from './errors.js';
export { type DefaultImageServiceOptions, defaultImageService } from './image/default-image-service.js';
export { LocalImageService, type LocalImageServiceOptions } from './image/local-image-service.js';
// model
export {
  type InstanceAction,
  type InstanceActionName,
  instanceActionNames,
  instanceActionSchema,
  type RequestContext,
} from './model/action.js';
export { type Claim, claimSchema } from './model/claim.js';
export { type Flavor, flavorResources, flavorSchema } from './model/flavor.js';
export {
  type Aggregate,
  aggregateSchema,
  type Host,
  type HostInput,
  hostSchema,
  traitSchema,
} from './model/host.js';
export { newId } from './model/ids.js';
export {
  containerFormats,
  diskFormats,
  type Image,
  type ImageProperties,
  imagePropertiesSchema,
  imageSchema,
  sha256Schema,
} from './model/image.js';
export { imageImportSchema, imageRegistrationSchema, imageSourceSchema } from './model/image-requests.js';
export {
  type Fault,
  faultSchema,
  type Instance,
  type InstancePatch,
  instanceSchema,
  type SchedulerHints,
  schedulerHintsSchema,
} from './model/instance.js';
export {
  displayNameSchema,
  idSchema,
  metadataSchema,
  plainTextSchema,
  textRecordSchema,
  uuidSchema,
} from './model/names.js';
export {
  defaultQuotaLimits,
  type QuotaDeltas,
  type QuotaLimits,
  quotaLimitsSchema,
  quotaResources,
} from './model/quota.js';
export {
  type CreateInstanceInput,
  type CreateInstanceRequest,
  createInstanceRequestSchema,
  type RebootKind,
  type RebuildRequest,
  rebootKindSchema,
  rebuildRequestSchema,
} from './model/requests.js';
export { type ReservedKeysOptions, refusingReservedKeys, reservedKeys } from './model/reserved-keys.js';
export {
  capacityOf,
  type Inventory,
  inventorySchema,
  ResourceClass,
  type Resources,
  resourceClassSchema,
  resourcesSchema,
} from './model/resources.js';
export {
  type ServerGroup,
  type ServerGroupInput,
  type ServerGroupPolicy,
  serverGroupPolicies,
  serverGroupSchema,
} from './model/server-group.js';
export {
  type PowerState,
  powerStateSchema,
  powerStates,
  type TaskState,
  taskStateSchema,
  taskStates,
  type VmState,
  vmStateSchema,
  vmStates,
} from './model/states.js';
export {
  assertActionAllowed,
  isActionAllowed,
  outcomeOf,
  type RequiredCapability,
  type Transition,
  transitions,
  vmStateForPower,
} from './model/transitions.js';
export { parseInput } from './model/validation.js';
// ports
export { type Clock, systemClock } from './ports/clock.js';
export {
  type ComputeDriver,
  type ConsoleReadable,
  type DriverCallOptions,
  type DriverCapabilities,
  type DriverInstance,
  defineCapabilities,
  type HostReport,
  type InterfaceAttachable,
  type Migratable,
  noCapabilities,
  type Pausable,
  type PowerControl,
  type PowerStateEvent,
  type Rebootable,
  type Rebuildable,
  type Snapshottable,
  type SpawnRequest,
  type Suspendable,
  supportsConsoleOutput,
  supportsInterfaceAttach,
  supportsMigration,
  supportsPause,
  supportsPowerControl,
  supportsReboot,
  supportsRebuild,
  supportsSnapshot,
  supportsSuspend,
  supportsVolumeAttach,
  type VolumeAttachable,
} from './ports/driver.js';
export type {
  ImageImport,
  ImageLocation,
  ImageRecord,
  ImageService,
  ImageSource,
  LocalArtifact,
} from './ports/image-service.js';
export type { NetworkAdapter, NetworkRequest, PortBinding } from './ports/network.js';
export type { QuotaEngine, QuotaReservation, QuotaUsage } from './ports/quota.js';
export type {
  ClaimChange,
  ClaimChangeFeed,
  ClaimGroup,
  GroupMemberClaim,
  PlacementGroup,
  PlacementRequest,
  Scheduler,
  Selection,
} from './ports/scheduler.js';
export {
  type DurableStorage,
  parseStorageOption,
  type StorageOption,
  storageOptionSchema,
} from './ports/storage.js';
export type {
  ActionStore,
  ClaimStore,
  FlavorStore,
  HostStore,
  ImageStore,
  InstanceFilter,
  InstanceStore,
  ServerGroupStore,
} from './ports/stores.js';
export type {
  EventLog,
  EventLogFilter,
  Lease,
  LeaseStore,
  LoggedEvent,
  StoreWrite,
  UnitOfWork,
} from './ports/unit-of-work.js';
export type { BlockDevice, VolumeAdapter, VolumeRequest } from './ports/volume.js';
export { CountingQuotaEngine } from './quota/counting-quota-engine.js';
export { MemoryActionStore } from './store/memory-action-store.js';
export { MemoryClaimStore } from './store/memory-claim-store.js';
export { MemoryFlavorStore } from './store/memory-flavor-store.js';
export { MemoryHostStore } from './store/memory-host-store.js';
export { MemoryImageStore } from './store/memory-image-store.js';
export { MemoryInstanceStore } from './store/memory-instance-store.js';
export { MemoryServerGroupStore } from './store/memory-server-group-store.js';
