/**
 * Typed errors of `@nova-lfs/core`. Every error has a stable `code`, keeps its `cause` and carries
 * structured `details`; callers and tests match on `code` and details, never on message text.
 */

/** Stable error codes of the core package. */
export const ErrorCode = {
  Validation: 'NLFS_VALIDATION',
  NotFound: 'NLFS_NOT_FOUND',
  Duplicate: 'NLFS_DUPLICATE',
  InvalidState: 'NLFS_INVALID_STATE',
  RevisionConflict: 'NLFS_REVISION_CONFLICT',
  QuotaExceeded: 'NLFS_QUOTA_EXCEEDED',
  NoValidHost: 'NLFS_NO_VALID_HOST',
  CapabilityUnsupported: 'NLFS_CAPABILITY_UNSUPPORTED',
  Driver: 'NLFS_DRIVER_ERROR',
  ImageChecksum: 'NLFS_IMAGE_CHECKSUM_MISMATCH',
  Configuration: 'NLFS_CONFIGURATION',
  BuildAborted: 'NLFS_BUILD_ABORTED',
  ClaimConflict: 'NLFS_CLAIM_CONFLICT',
  DeadlineExceeded: 'NLFS_DEADLINE_EXCEEDED',
  EngineClosed: 'NLFS_ENGINE_CLOSED',
  Unexpected: 'NLFS_UNEXPECTED',
  GuestMissing: 'NLFS_GUEST_MISSING',
  Interrupted: 'NLFS_INTERRUPTED',
  /** Evacuate refused: the host is not down (Nova's ComputeServiceInUse). */
  HostNotDown: 'NLFS_HOST_NOT_DOWN',
  Storage: 'NLFS_STORAGE',
  /** A fault: the power-state sync of an instance failed. */
  PowerSync: 'NLFS_POWER_SYNC',
  /** The instance is locked and the caller is not an admin (Nova's InstanceIsLocked, HTTP 409). */
  InstanceLocked: 'NLFS_INSTANCE_LOCKED',
  /** A move was refused before it began (different driver kinds, a pre-check failed; Nova's MigrationPreCheckError). */
  MigrationPreCheck: 'NLFS_MIGRATION_PRECHECK',
  // ---- @nova-lfs/store-sql
  DbUnavailable: 'NLFS_DB_UNAVAILABLE',
  DbSchemaTooNew: 'NLFS_DB_SCHEMA_TOO_NEW',
  DbInvalidParameter: 'NLFS_DB_INVALID_PARAMETER',
  DbInvalidValue: 'NLFS_DB_INVALID_VALUE',
  DbDuplicate: 'NLFS_DB_DUPLICATE',
  DbConstraint: 'NLFS_DB_CONSTRAINT',
  DbConflict: 'NLFS_DB_CONFLICT',
  DbTimeout: 'NLFS_DB_TIMEOUT',
  DbStatementFailed: 'NLFS_DB_STATEMENT_FAILED',
  // ---- @nova-lfs/scheduler
  SchedulerDuplicatePlugin: 'NLFS_SCHED_DUPLICATE_PLUGIN',
  SchedulerUnknownPlugin: 'NLFS_SCHED_UNKNOWN_PLUGIN',
  SchedulerInvalidProfile: 'NLFS_SCHED_INVALID_PROFILE',
  // ---- drivers
  DockerUnavailable: 'NLFS_DOCKER_UNAVAILABLE',
  KvmBindingUnavailable: 'NLFS_KVM_BINDING_UNAVAILABLE',
  KvmUnreachable: 'NLFS_KVM_UNREACHABLE',
  KvmUnsupportedImage: 'NLFS_KVM_UNSUPPORTED_IMAGE',
  LxcUnavailable: 'NLFS_LXC_UNAVAILABLE',
  LxcCommand: 'NLFS_LXC_COMMAND',
  LxcConfigValue: 'NLFS_LXC_CONFIG_VALUE',
  HyperVCommand: 'NLFS_HYPERV_COMMAND',
  HyperVCommandTooLong: 'NLFS_HYPERV_COMMAND_TOO_LONG',
  HyperVConnection: 'NLFS_HYPERV_CONNECTION',
  XenUnreachable: 'NLFS_XEN_UNREACHABLE',
  XenUnsupportedImage: 'NLFS_XEN_UNSUPPORTED_IMAGE',
  XenXmlValue: 'NLFS_XEN_XML_VALUE',
  LibvirtCall: 'NLFS_LIBVIRT_CALL_FAILED',
  LibvirtUnavailable: 'NLFS_LIBVIRT_UNAVAILABLE',
  LibvirtClosed: 'NLFS_LIBVIRT_CLOSED',
  // ---- @nova-lfs/bus-nats and @nova-lfs/agent
  BusUnavailable: 'NLFS_BUS_UNAVAILABLE',
  BusMessageInvalid: 'NLFS_BUS_MESSAGE_INVALID',
  BusVersionUnsupported: 'NLFS_BUS_VERSION_UNSUPPORTED',
  BusSenderMismatch: 'NLFS_BUS_SENDER_MISMATCH',
  BusUnknownMethod: 'NLFS_BUS_UNKNOWN_METHOD',
  BusNoResponder: 'NLFS_BUS_NO_RESPONDER',
  BusConnectionLost: 'NLFS_BUS_CONNECTION_LOST',
  BusPermissionDenied: 'NLFS_BUS_PERMISSION_DENIED',
  BusClosed: 'NLFS_BUS_CLOSED',
  AgentArguments: 'NLFS_AGENT_ARGUMENTS',
  AgentUnreachable: 'NLFS_AGENT_UNREACHABLE',
} as const;

/**
 * Every stable error code of Nova LFS, across its packages, in one union: a code means one
 * thing everywhere (errors, instance faults, answers crossing the bus). Packages name their codes
 * from {@link ErrorCode}; a new code is added here, so no two packages can give one code two
 * meanings.
 */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether `code` is one of Nova LFS's error codes (e.g. a code received from another process). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && knownCodes.has(code);
}

/** Base class of every Nova LFS error: a stable `code`, structured `details` and the `cause`. */
export class NovaError<D extends object = Record<string, unknown>> extends Error {
  /** Stable machine-readable code, e.g. `NLFS_QUOTA_EXCEEDED`: one of {@link ErrorCode}. */
  readonly code: ErrorCode;
  /** Structured detail: which field, which quota, which host. */
  readonly details: D;

  constructor(code: ErrorCode, message: string, details: D, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** One rejected field of a request: the path to the field and the rule it broke. */
export interface FieldIssue {
  /** Dotted path of the field, e.g. `metadata.owner` or `flavorId`. */
  readonly path: string;
  /** The rule broken (zod issue code or a domain rule such as `exists`). */
  readonly rule: string;
  /** Human-readable explanation. */
  readonly message: string;
}

/** A request failed validation at the boundary. `details.issues` names every field and rule. */
export class ValidationError extends NovaError<{ issues: readonly FieldIssue[] }> {
  constructor(issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    const first = issues[0];
    super(
      ErrorCode.Validation,
      first ? `invalid request: ${first.path || '(root)'}: ${first.message}` : 'invalid request',
      { issues },
      options,
    );
  }

  /** Paths of all rejected fields, handy for assertions. */
  get fields(): string[] {
    return this.details.issues.map((i) => i.path);
  }
}

/** A referenced entity does not exist. `field` names the request field that referenced it. */
export class NotFoundError extends NovaError<{ kind: string; id: string; field?: string }> {
  constructor(kind: string, id: string, field?: string) {
    super(
      ErrorCode.NotFound,
      `${kind} ${JSON.stringify(id)} not found`,
      field ? { kind, id, field } : { kind, id },
    );
  }
}

/** An entity with this id already exists. */
export class DuplicateError extends NovaError<{ kind: string; id: string }> {
  constructor(kind: string, id: string) {
    super(ErrorCode.Duplicate, `${kind} ${JSON.stringify(id)} already exists`, { kind, id });
  }
}

/** Details of a refused lifecycle action: the action and the instance's states at the time. */
export interface InvalidStateDetails {
  readonly instanceId: string;
  readonly action: string;
  readonly vmState: string;
  readonly taskState: string | null;
  readonly powerState: string;
}

/** The transition table refused an action in the instance's current state (HTTP 409 in the API). */
export class InvalidStateError extends NovaError<InvalidStateDetails> {
  constructor(details: InvalidStateDetails, options?: { cause?: unknown }) {
    super(
      ErrorCode.InvalidState,
      `cannot ${details.action} instance ${details.instanceId} while vm_state=${details.vmState} task_state=${details.taskState ?? 'none'}`,
      details,
      options,
    );
  }
}

/** A compare-and-set update lost: the stored revision differs from the expected one. */
export class RevisionConflictError extends NovaError<{
  kind: string;
  id: string;
  expected: number;
  actual: number;
}> {
  constructor(kind: string, id: string, expected: number, actual: number) {
    super(
      ErrorCode.RevisionConflict,
      `${kind} ${id} changed concurrently (expected revision ${expected}, found ${actual})`,
      { kind, id, expected, actual },
    );
  }
}

/** Details of a quota rejection. */
export interface QuotaExceededDetails {
  readonly projectId: string;
  /** The quota resource: `instances`, `cores` or `ramMb`. */
  readonly resource: string;
  readonly limit: number;
  readonly inUse: number;
  /** In-flight reservations not yet committed. */
  readonly reserved: number;
  readonly requested: number;
}

/** A request would exceed a project's quota. Nothing was reserved. */
export class QuotaExceededError extends NovaError<QuotaExceededDetails> {
  constructor(details: QuotaExceededDetails) {
    super(
      ErrorCode.QuotaExceeded,
      `quota exceeded for ${details.resource} in project ${details.projectId}: limit ${details.limit}, in use ${details.inUse}, reserved ${details.reserved}, requested ${details.requested}`,
      details,
    );
  }
}

/** Why a placement failed: how many hosts each filter rejected, by reason. */
export interface NoValidHostDetails {
  /** Hosts considered in the request's scheduling domain. */
  readonly hostsConsidered: number;
  /** `filter name -> reason -> number of hosts rejected`. */
  readonly rejections: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Instances requested together (all-or-nothing). */
  readonly requested: number;
}

/** No host passed every filter (Nova's "No valid host was found", with the reasons). */
export class NoValidHostError extends NovaError<NoValidHostDetails> {
  constructor(details: NoValidHostDetails, message?: string) {
    super(ErrorCode.NoValidHost, message ?? describeRejections(details), details);
  }
}

function describeRejections(details: NoValidHostDetails): string {
  const parts: string[] = [];
  for (const [filter, reasons] of Object.entries(details.rejections)) {
    for (const [reason, count] of Object.entries(reasons)) parts.push(`${filter}: ${count} ${reason}`);
  }
  return `no valid host for ${details.requested} instance(s) among ${details.hostsConsidered} host(s)${parts.length ? ` (${parts.join('; ')})` : ''}`;
}

/**
 * `evacuate` refused: the host is up (Nova's ComputeServiceInUse). Only a host marked down
 * (`up: false`, disabled or not) is evacuated; evacuating a live host would run two copies.
 */
export class HostNotDownError extends NovaError<{ hostId: string; up: boolean; enabled: boolean }> {
  constructor(hostId: string, up: boolean, enabled: boolean) {
    super(ErrorCode.HostNotDown, `host ${hostId} is not down: evacuate refused`, { hostId, up, enabled });
  }
}

/** The instance's driver lacks the capability an action needs; the action was refused before any change. */
export class CapabilityUnsupportedError extends NovaError<{
  capability: string;
  driver: string;
  hostId?: string;
}> {
  constructor(capability: string, driver: string, hostId?: string) {
    super(
      ErrorCode.CapabilityUnsupported,
      `driver ${driver} does not support ${capability}`,
      hostId ? { capability, driver, hostId } : { capability, driver },
    );
  }
}

/**
 * The instance is locked (`compute.lock`) and the caller is not an admin, or a non-admin tried to
 * unlock an instance an admin locked. Nothing changed.
 */
export class InstanceLockedError extends NovaError<{
  instanceId: string;
  action: string;
  lockedBy: 'admin' | 'owner';
  reason: string | null;
}> {
  constructor(instanceId: string, action: string, lockedBy: 'admin' | 'owner', reason: string | null) {
    super(
      ErrorCode.InstanceLocked,
      `instance ${instanceId} is locked${reason ? ` (${reason})` : ''}: ${action} refused`,
      { instanceId, action, lockedBy, reason },
    );
  }
}

/**
 * A move (live or cold migration, resize) was refused before anything changed: the reason says
 * why (destination of another driver kind, a driver's pre-check, no capacity, same flavor).
 */
export class MigrationPreCheckError extends NovaError<{
  instanceId: string;
  reason: string;
  hostId?: string;
}> {
  constructor(instanceId: string, reason: string, hostId?: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.MigrationPreCheck,
      `instance ${instanceId} cannot move${hostId ? ` to ${hostId}` : ''}: ${reason}`,
      hostId ? { instanceId, reason, hostId } : { instanceId, reason },
      options,
    );
  }
}

/** Details of a {@link DriverError}. */
export interface DriverErrorDetails {
  readonly driver: string;
  readonly operation: string;
  readonly instanceId?: string;
  readonly hostId?: string;
  /**
   * Whether the same call may succeed if tried again later (a busy daemon, a lost connection).
   * Default true.
   */
  readonly retryable?: boolean;
  /**
   * Whether a build that failed with this error may be tried on another host (Nova's
   * `RescheduledException`); false for failures no host can fix, such as an image the driver
   * cannot run (Nova's `BuildAbortException`). Default true.
   */
  readonly reschedule?: boolean;
}

/** A hypervisor or engine call failed. `cause` keeps the engine's own error. */
export class DriverError extends NovaError<DriverErrorDetails> {
  constructor(details: DriverErrorDetails, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Driver, `${details.driver} ${details.operation} failed: ${message}`, details, options);
  }

  /** Whether trying the same call again may help (see {@link DriverErrorDetails.retryable}). */
  get retryable(): boolean {
    return this.details.retryable !== false;
  }

  /** Whether another host may succeed (see {@link DriverErrorDetails.reschedule}). */
  get reschedule(): boolean {
    return this.details.reschedule !== false;
  }
}

/**
 * A driver call or task ran past its deadline (Nova's `instance_build_timeout` and friends). The
 * engine aborted the call's signal and cleaned up what it left.
 */
export class DeadlineExceededError extends NovaError<{
  operation: string;
  timeoutMs: number;
  instanceId?: string;
  hostId?: string;
}> {
  constructor(details: { operation: string; timeoutMs: number; instanceId?: string; hostId?: string }) {
    super(
      ErrorCode.DeadlineExceeded,
      `${details.operation}${details.instanceId ? ` of ${details.instanceId}` : ''} exceeded its ${details.timeoutMs} ms deadline`,
      details,
    );
  }
}

/** The engine was closed: no new work is accepted. */
export class EngineClosedError extends NovaError<{ operation: string }> {
  constructor(operation: string) {
    super(ErrorCode.EngineClosed, `engine is closed: ${operation} refused`, { operation });
  }
}

/** Image bytes did not hash to the declared sha256. The artifact was discarded. */
export class ImageChecksumError extends NovaError<{ imageId: string; expected: string; actual: string }> {
  constructor(imageId: string, expected: string, actual: string) {
    super(ErrorCode.ImageChecksum, `image ${imageId}: sha256 ${actual} does not match ${expected}`, {
      imageId,
      expected,
      actual,
    });
  }
}

/** The SDK was composed wrongly (a missing scheduler, an unknown host driver). */
export class ConfigurationError extends NovaError<{ setting: string }> {
  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Configuration, message, { setting }, options);
  }
}

/** A build stopped because its instance was deleted meanwhile. Internal to the engine's build loop. */
export class BuildAbortedError extends NovaError<{ instanceId: string }> {
  constructor(instanceId: string) {
    super(ErrorCode.BuildAborted, `build of ${instanceId} aborted: instance deleted`, { instanceId });
  }
}

/**
 * A claim lost a race in a shared claim store (another process changed the host's usage, or the
 * host no longer has room): the scheduler reloads claims and chooses again.
 */
export class ClaimConflictError extends NovaError<{ hostId: string; claimId: string; reason: string }> {
  constructor(hostId: string, claimId: string, reason: string) {
    super(ErrorCode.ClaimConflict, `claim ${claimId} on host ${hostId} conflicts: ${reason}`, {
      hostId,
      claimId,
      reason,
    });
  }
}

/**
 * Type guard: is `e` a Nova LFS error (with the given code)? Decides by shape and code, not by
 * class identity, so it holds for errors thrown by another copy of the package.
 */
export function isNovaError(e: unknown, code?: ErrorCode): e is NovaError {
  if (e instanceof NovaError) return code === undefined || e.code === code;
  if (!(e instanceof Error)) return false;
  const c = (e as { code?: unknown }).code;
  if (typeof c !== 'string' || !c.startsWith('NLFS_')) return false;
  if (typeof (e as { details?: unknown }).details !== 'object') return false;
  return code === undefined || c === code;
}
