/**
 * `@nova-lfs/libvirt`: the project's own libvirt binding, over libvirt's C API (`libvirt.so.0`)
 * through koffi. Calls run off the main thread on libuv's pool; failures are typed
 * `LibvirtError`s with libvirt's code, domain, message and level; lifecycle and device-removal
 * events come from libvirt's event loop. See the README for what was verified and the thread-pool sizing.
 * @packageDocumentation
 */
export {
  Connection,
  decodeVersion,
  type EventSubscription,
  type LibvirtVersion,
  type LifecycleSubscription,
  libvirtVersion,
  type NodeInfo,
  type OpenOptions,
  threadPoolSize,
} from './connection.js';
export {
  CompareCpuFlags,
  CpuCompareResult,
  DeviceModifyFlags,
  DomainEventStartedDetail,
  DomainEventStoppedDetail,
  DomainEventType,
  DomainPausedReason,
  DomainState,
  DomainXmlFlags,
  domainEventTypeNames,
  domainStateNames,
  JobStatsFlags,
  JobType,
  ListDomainsFlags,
  MigrateFlags,
  MigrateParam,
  ShutdownFlags,
  SnapshotCreateFlags,
  SnapshotDeleteFlags,
  SnapshotRevertFlags,
  TypedParamType,
  UndefineFlags,
} from './constants.js';
export type { DeviceEventListener, DomainDeviceEvent } from './device-events.js';
export {
  Domain,
  type DomainInfo,
  type JobInfo,
  type JobStats,
  type MigrateOptions,
  migrateParameters,
} from './domain.js';
export { DomainSnapshot } from './domain-snapshot.js';
export { VirErrorDomain, VirErrorNumber, virErrorDomainNames, virErrorNumberNames } from './error-codes.js';
export {
  type ErrorAttribution,
  isLibvirtError,
  LibvirtClosedError,
  LibvirtError,
  LibvirtErrorCode,
  type LibvirtErrorDetails,
  LibvirtUnavailableError,
  type RawVirError,
  VirErrorLevel,
} from './errors.js';
export type { DomainLifecycleEvent, LifecycleListener } from './lifecycle-events.js';
export type { TypedParameter, TypedParameterValue } from './typed-params.js';
