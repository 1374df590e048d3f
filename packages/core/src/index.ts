/**
 * `@nova-lfs/core`: what an embedder calls: `createCompute`, the engine, its options and events,
 * the model and the errors. Interfaces and building blocks for driver, store and scheduler
 * authors are in `@nova-lfs/core/ports`; test doubles in `@nova-lfs/core/testing`.
 * @packageDocumentation
 */
import 'reflect-metadata';

// implementations
export { type ComputeOptions, createCompute } from './compose/create-compute.js';
export type { CoreOptions } from './compose/register-core.js';
export type {
  FlavorAdmin,
  FlavorInput,
  HostAdmin,
  HostPlacement,
  HostStatus,
  QuotaAdmin,
  ServerGroupAdmin,
} from './engine/admin-facades.js';
export { hostPlacementSchema, hostStatusSchema } from './engine/admin-facades.js';
// DI
// engine
export { ComputeEngine, type EventStreamOptions } from './engine/compute-engine.js';
export { type DriverTimeouts, defaultEngineOptions, type EngineOptions } from './engine/engine-options.js';
export type { EvacuatedInstance, EvacuateOptions, EvacuateReport } from './engine/evacuate-flow.js';
export type {
  InstanceActionEvent,
  InstanceCreatedEvent,
  InstanceDeletedEvent,
  InstanceEvent,
  InstanceEventType,
  InstanceFaultEvent,
  InstanceMigrationEvent,
  InstanceOrphanEvent,
  InstanceRescheduledEvent,
  InstanceScheduledEvent,
  InstanceStateEvent,
  InstanceStates,
} from './engine/events.js';
export type { HostBinding } from './engine/host-registry.js';
export {
  type InterfaceAttachRequest,
  interfaceAttachRequestSchema,
} from './engine/interface-attach-flow.js';
export type { LiveMigrateOptions } from './engine/live-migration-flow.js';
export type { MigrationAdmin, MigrationListFilter } from './engine/migration-admin.js';
export type { ReconcileMode, ReconcileReport } from './engine/reconciler.js';
export type { ColdMigrateOptions } from './engine/resize-flow.js';
export { type VolumeAttachRequest, volumeAttachRequestSchema } from './engine/volume-attach-flow.js';
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
  HostNotDownError,
  ImageChecksumError,
  InstanceLockedError,
  type InvalidStateDetails,
  InvalidStateError,
  isErrorCode,
  isNovaError,
  MigrationPreCheckError,
  NotFoundError,
  type NoValidHostDetails,
  NoValidHostError,
  NovaError,
  type QuotaExceededDetails,
  QuotaExceededError,
  RevisionConflictError,
  ValidationError,
} from './errors.js';
export { LocalImageService, type LocalImageServiceOptions } from './image/local-image-service.js';
// model
export {
  type InstanceAction,
  type InstanceActionName,
  type InstantActionName,
  instanceActionNames,
  instanceActionSchema,
  instantActionNames,
  isInstantAction,
  type RequestContext,
  type TaskActionName,
  taskActionNames,
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
  type AttachedPort,
  type AttachedVolume,
  attachedPortSchema,
  attachedVolumeSchema,
  type Fault,
  faultSchema,
  type Instance,
  type InstanceLock,
  type InstancePatch,
  instanceLockSchema,
  instanceSchema,
  type MoveContext,
  moveContextSchema,
  type SchedulerHints,
  type ShelveInfo,
  schedulerHintsSchema,
  shelveInfoSchema,
} from './model/instance.js';
export {
  type MigrationFilter,
  type MigrationKind,
  type MigrationProgress,
  type MigrationRecord,
  type MigrationStatus,
  migrationKinds,
  migrationRecordSchema,
  migrationStatuses,
} from './model/migration.js';
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
export type {
  ComputeDriver,
  DriverCallOptions,
  DriverCapabilities,
  DriverInstance,
  HostReport,
  PowerStateEvent,
  SpawnRequest,
} from './ports/driver.js';
export type {
  ImageImport,
  ImageRecord,
  ImageService,
  ImageSource,
  LocalArtifact,
} from './ports/image-service.js';
export type { NetworkAdapter, NetworkRequest, PortBinding } from './ports/network.js';
export type { QuotaEngine, QuotaReservation, QuotaUsage } from './ports/quota.js';
export type { PlacementRequest, Selection } from './ports/scheduler.js';
export type { StorageOption } from './ports/storage.js';
export type { ImageStore, InstanceFilter } from './ports/stores.js';
export type { EventLogFilter, LoggedEvent } from './ports/unit-of-work.js';
export type { BlockDevice, VolumeAdapter, VolumeRequest } from './ports/volume.js';
