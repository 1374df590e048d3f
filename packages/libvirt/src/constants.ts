/** Domain states (`virDomainState`). */
export const DomainState = {
  NoState: 0,
  Running: 1,
  Blocked: 2,
  Paused: 3,
  Shutdown: 4,
  Shutoff: 5,
  Crashed: 6,
  PmSuspended: 7,
} as const;
/** A {@link DomainState} value. */
export type DomainState = (typeof DomainState)[keyof typeof DomainState];

/** Names of {@link DomainState} values, as `virsh domstate` prints them. */
export const domainStateNames: Readonly<Record<number, string>> = Object.freeze({
  0: 'no state',
  1: 'running',
  2: 'blocked',
  3: 'paused',
  4: 'in shutdown',
  5: 'shut off',
  6: 'crashed',
  7: 'pmsuspended',
});

/** Lifecycle event types (`virDomainEventType`). */
export const DomainEventType = {
  Defined: 0,
  Undefined: 1,
  Started: 2,
  Suspended: 3,
  Resumed: 4,
  Stopped: 5,
  Shutdown: 6,
  PmSuspended: 7,
  Crashed: 8,
} as const;
/** A {@link DomainEventType} value. */
export type DomainEventType = (typeof DomainEventType)[keyof typeof DomainEventType];

/** Lower-case names of {@link DomainEventType} values (`'started'`, `'stopped'`, ...). */
export const domainEventTypeNames: Readonly<Record<number, string>> = Object.freeze({
  0: 'defined',
  1: 'undefined',
  2: 'started',
  3: 'suspended',
  4: 'resumed',
  5: 'stopped',
  6: 'shutdown',
  7: 'pmsuspended',
  8: 'crashed',
});

/** Details of a `stopped` lifecycle event (`virDomainEventStoppedDetailType`). */
export const DomainEventStoppedDetail = {
  Shutdown: 0,
  Destroyed: 1,
  Crashed: 2,
  Migrated: 3,
  Saved: 4,
  Failed: 5,
  FromSnapshot: 6,
} as const;

/** Details of a `started` lifecycle event (`virDomainEventStartedDetailType`). */
export const DomainEventStartedDetail = {
  Booted: 0,
  Migrated: 1,
  Restored: 2,
  FromSnapshot: 3,
  Wakeup: 4,
} as const;

/** Flags of {@link Connection.listAllDomains} (`virConnectListAllDomainsFlags`); 0 lists all. */
export const ListDomainsFlags = {
  Active: 1 << 0,
  Inactive: 1 << 1,
  Persistent: 1 << 2,
  Transient: 1 << 3,
  Running: 1 << 4,
  Paused: 1 << 5,
  Shutoff: 1 << 6,
  Other: 1 << 7,
  ManagedSave: 1 << 8,
  NoManagedSave: 1 << 9,
  Autostart: 1 << 10,
  NoAutostart: 1 << 11,
  HasSnapshot: 1 << 12,
  NoSnapshot: 1 << 13,
} as const;

/** Flags of {@link Domain.undefine} (`virDomainUndefineFlagsValues`). */
export const UndefineFlags = {
  ManagedSave: 1 << 0,
  SnapshotsMetadata: 1 << 1,
  Nvram: 1 << 2,
  KeepNvram: 1 << 3,
  CheckpointsMetadata: 1 << 4,
  Tpm: 1 << 5,
  KeepTpm: 1 << 6,
} as const;

/** Flags of {@link Domain.xml} (`virDomainXMLFlags`). */
export const DomainXmlFlags = {
  Secure: 1 << 0,
  Inactive: 1 << 1,
  UpdateCpu: 1 << 2,
  Migratable: 1 << 3,
} as const;

/** Flags of {@link Domain.shutdown} (`virDomainShutdownFlagValues`); 0 lets the hypervisor choose. */
export const ShutdownFlags = {
  AcpiPowerButton: 1 << 0,
  GuestAgent: 1 << 1,
  Initctl: 1 << 2,
  Signal: 1 << 3,
  Paravirt: 1 << 4,
} as const;

/** Flags of {@link Domain.attachDevice} / {@link Domain.detachDevice} (`virDomainDeviceModifyFlags`). */
export const DeviceModifyFlags = { Current: 0, Live: 1 << 0, Config: 1 << 1, Force: 1 << 2 } as const;

/** Flags of {@link Domain.createSnapshot} (`virDomainSnapshotCreateFlags`). */
export const SnapshotCreateFlags = {
  Redefine: 1 << 0,
  Current: 1 << 1,
  NoMetadata: 1 << 2,
  Halt: 1 << 3,
  DiskOnly: 1 << 4,
  ReuseExt: 1 << 5,
  Quiesce: 1 << 6,
  Atomic: 1 << 7,
  Live: 1 << 8,
  Validate: 1 << 9,
} as const;

/** Flags of {@link DomainSnapshot.revert} (`virDomainSnapshotRevertFlags`). */
export const SnapshotRevertFlags = {
  Running: 1 << 0,
  Paused: 1 << 1,
  Force: 1 << 2,
  ResetNvram: 1 << 3,
} as const;

/** Flags of {@link DomainSnapshot.delete} (`virDomainSnapshotDeleteFlags`). */
export const SnapshotDeleteFlags = { Children: 1 << 0, MetadataOnly: 1 << 1, ChildrenOnly: 1 << 2 } as const;

/** Flags of {@link Domain.migrateToUri} (`virDomainMigrateFlags`). */
export const MigrateFlags = {
  Live: 1 << 0,
  PeerToPeer: 1 << 1,
  Tunnelled: 1 << 2,
  PersistDest: 1 << 3,
  UndefineSource: 1 << 4,
  Paused: 1 << 5,
  NonSharedDisk: 1 << 6,
  NonSharedInc: 1 << 7,
  ChangeProtection: 1 << 8,
  Unsafe: 1 << 9,
  Offline: 1 << 10,
  Compressed: 1 << 11,
  AbortOnError: 1 << 12,
  AutoConverge: 1 << 13,
  RdmaPinAll: 1 << 14,
  Postcopy: 1 << 15,
  Tls: 1 << 16,
  Parallel: 1 << 17,
} as const;

/** Names of the migration parameters of {@link Domain.migrateToUri} (`VIR_MIGRATE_PARAM_*`). */
export const MigrateParam = {
  Uri: 'migrate_uri',
  DestName: 'destination_name',
  DestXml: 'destination_xml',
  PersistXml: 'persistent_xml',
  Bandwidth: 'bandwidth',
  BandwidthPostcopy: 'bandwidth.postcopy',
  GraphicsUri: 'graphics_uri',
  ListenAddress: 'listen_address',
  MigrateDisks: 'migrate_disks',
  DisksPort: 'disks_port',
  DisksUri: 'disks_uri',
  Compression: 'compression',
  AutoConvergeInitial: 'auto_converge.initial',
  AutoConvergeIncrement: 'auto_converge.increment',
  ParallelConnections: 'parallel.connections',
} as const;

/** Flags of {@link Connection.compareCpu} / {@link Connection.compareHypervisorCpu} (`virConnectCompareCPUFlags`). */
export const CompareCpuFlags = {
  /** Fail with VIR_ERR_CPU_INCOMPATIBLE (naming the missing features) instead of returning `Incompatible`. */
  FailIncompatible: 1 << 0,
  /** Validate the CPU XML against libvirt's schema. */
  ValidateXml: 1 << 1,
} as const;

/** Results of a CPU comparison (`virCPUCompareResult`; -1, an error, rejects instead). */
export const CpuCompareResult = { Incompatible: 0, Identical: 1, Superset: 2 } as const;

/** Reasons of the `paused` state (`virDomainPausedReason`), e.g. during a migration. */
export const DomainPausedReason = {
  Unknown: 0,
  User: 1,
  Migration: 2,
  Save: 3,
  Dump: 4,
  IoError: 5,
  Watchdog: 6,
  FromSnapshot: 7,
  ShuttingDown: 8,
  Snapshot: 9,
  Crashed: 10,
  StartingUp: 11,
  Postcopy: 12,
  PostcopyFailed: 13,
} as const;

/** Job types (`virDomainJobType`). */
export const JobType = { None: 0, Bounded: 1, Unbounded: 2, Completed: 3, Failed: 4, Cancelled: 5 } as const;

/** Flags of {@link Domain.jobStats} (`virDomainGetJobStatsFlags`). */
export const JobStatsFlags = { Completed: 1 << 0, KeepCompleted: 1 << 1 } as const;

/** Types of a typed parameter (`virTypedParameterType`). */
export const TypedParamType = {
  Int: 1,
  UInt: 2,
  LLong: 3,
  ULLong: 4,
  Double: 5,
  Boolean: 6,
  String: 7,
} as const;
