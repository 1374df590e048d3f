import { ConfigurationError, DriverError, ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';

/** Stable error codes of the Hyper-V driver (operation failures reach the engine as core `DriverError`s). */
export const HyperVErrorCode = {
  Command: ErrorCode.HyperVCommand,
  CommandTooLong: ErrorCode.HyperVCommandTooLong,
  Connection: ErrorCode.HyperVConnection,
} as const;

/** The fields of a PowerShell `ErrorRecord` the driver's scripts write on stderr. */
export interface PowerShellErrorRecord {
  /** e.g. `InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM`. */
  readonly fullyQualifiedErrorId: string;
  /** `CategoryInfo.Category`, e.g. `InvalidArgument`, `ObjectNotFound`, `PermissionDenied`. */
  readonly category: string;
  /** `CategoryInfo.Reason`: usually the exception's type name without namespace. */
  readonly reason: string;
  /** `CategoryInfo.TargetName`, e.g. the VM name. */
  readonly targetName: string;
  /** `CategoryInfo.Activity`: the cmdlet, e.g. `Get-VM`. */
  readonly activity: string;
  /** Full type name of the exception, e.g. `Microsoft.HyperV.PowerShell.VirtualizationException`. */
  readonly exceptionType: string;
  readonly message: string;
}

/** What a failed script means for the driver, read from its `ErrorRecord`. */
export type HyperVFailureKind =
  /** Get-VM found no VM of that name. */
  | 'notFound'
  /** A VM of that name exists already. */
  | 'exists'
  /** The VM's state does not allow the operation (e.g. Suspend-VM of a VM that is off). */
  | 'invalidState'
  /** The host lacks memory or another resource now. */
  | 'insufficientResources'
  /** The account may not manage Hyper-V (not in Hyper-V Administrators). */
  | 'accessDenied'
  /** A lock or a wait on the host timed out. */
  | 'timeout'
  /** An uploaded image did not hash to its sha256 on the host. */
  | 'imageHashMismatch'
  /** Anything else. */
  | 'other';

/** Reads what a PowerShell error means from its FullyQualifiedErrorId, category and exception type. */
export function classifyErrorRecord(record: PowerShellErrorRecord): HyperVFailureKind {
  const [head = '', cmdlet = ''] = record.fullyQualifiedErrorId.split(',');
  if (head === 'NovaLfsVMExists' || record.category === 'ResourceExists') return 'exists';
  if (head === 'NovaLfsImageHashMismatch') return 'imageHashMismatch';
  if (record.category === 'ObjectNotFound') return 'notFound';
  if (head === 'InvalidParameter' && cmdlet.endsWith('.GetVM') && record.category === 'InvalidArgument')
    return 'notFound';
  if (head === 'InvalidState') return 'invalidState';
  if (
    head === 'OutOfMemory' ||
    record.category === 'ResourceUnavailable' ||
    record.category === 'LimitsExceeded'
  )
    return 'insufficientResources';
  if (
    head === 'AccessDenied' ||
    record.category === 'PermissionDenied' ||
    record.category === 'SecurityError'
  )
    return 'accessDenied';
  if (record.exceptionType === 'System.TimeoutException' || record.category === 'OperationTimeout')
    return 'timeout';
  return 'other';
}

/** Details of a failed script call. */
export interface HyperVCommandDetails {
  /** Which of the driver's fixed scripts ran. */
  readonly script: string;
  /** Exit code of `powershell`, when it exited. */
  readonly exitCode?: number;
  /** Signal the remote side reported, when any. */
  readonly signal?: string;
  /** What went wrong in a word or a sentence (`powershell error`, `no result line on stdout`). */
  readonly problem: string;
  /** The last part of stderr. */
  readonly stderr: string;
  /** The PowerShell error, when the script wrote one. */
  readonly record?: PowerShellErrorRecord;
  /** Whether the call ran past the driver's `commandTimeoutMs`. */
  readonly timedOut?: boolean;
}

/** A script call that failed; kept as the `cause` of a `DriverError`. */
export class HyperVCommandError extends NovaError<HyperVCommandDetails & { kind: HyperVFailureKind }> {
  constructor(details: HyperVCommandDetails, options?: { cause?: unknown }) {
    const kind = details.timedOut
      ? 'timeout'
      : details.record
        ? classifyErrorRecord(details.record)
        : 'other';
    const what = details.record
      ? `${details.record.fullyQualifiedErrorId}: ${details.record.message}`
      : `${details.problem}${details.stderr ? `: ${details.stderr.trim().slice(-500)}` : ''}`;
    super(
      HyperVErrorCode.Command,
      `${details.script} script failed (${what})`,
      { ...details, kind },
      options,
    );
  }

  /** What the failure means (see {@link HyperVFailureKind}). */
  get kind(): HyperVFailureKind {
    return this.details.kind;
  }
}

/** A command line longer than the host's shell takes (see `maxCommandLength`). */
export class HyperVCommandTooLongError extends NovaError<{ script: string; length: number; max: number }> {
  constructor(script: string, length: number, max: number) {
    super(
      HyperVErrorCode.CommandTooLong,
      `${script} command is ${length} characters, over the ${max} the host's shell takes`,
      { script, length, max },
    );
  }
}

/** The SSH connection to the Hyper-V host failed or was lost. */
export class HyperVConnectionError extends NovaError<{ host: string; port: number; stage: string }> {
  constructor(
    details: { host: string; port: number; stage: string },
    message: string,
    options?: { cause?: unknown },
  ) {
    super(
      HyperVErrorCode.Connection,
      `ssh to ${details.host}:${details.port} (${details.stage}): ${message}`,
      details,
      options,
    );
  }
}

/** A setting of `HyperVDriver` that cannot work (e.g. no host key to check against). */
export class HyperVSettingError extends ConfigurationError {}

/** What only the caller knows about a failure. */
export interface HyperVFailureClass {
  readonly retryable?: boolean;
  readonly reschedule?: boolean;
}

/**
 * Wraps a failure in a typed `DriverError` (driver `hyperv`) keeping it as `cause`. Image bytes
 * that fail their sha256 neither retry nor reschedule; a missing VM, an invalid state or an access
 * denial does not help on retry; a timeout, a lost connection or a host out of memory does (the
 * last also on another host).
 */
export function wrapHyperVError(
  operation: string,
  e: unknown,
  instanceId?: string,
  klass: HyperVFailureClass = {},
): DriverError {
  if (e instanceof DriverError) return e;
  let retryable: boolean | undefined;
  let reschedule: boolean | undefined;
  if (isNovaError(e, ErrorCode.ImageChecksum)) {
    retryable = false;
    reschedule = false;
  } else if (e instanceof HyperVCommandError) {
    switch (e.kind) {
      case 'notFound':
      case 'invalidState':
      case 'exists':
        retryable = false;
        break;
      case 'accessDenied':
        retryable = false;
        reschedule = true;
        break;
      case 'insufficientResources':
      case 'timeout':
      case 'imageHashMismatch':
        retryable = true;
        reschedule = true;
        break;
      default:
        break;
    }
  } else if (e instanceof HyperVConnectionError) {
    retryable = true;
  } else if (e instanceof HyperVCommandTooLongError) {
    retryable = false;
    reschedule = false;
  }
  retryable = klass.retryable ?? retryable;
  reschedule = klass.reschedule ?? reschedule;
  return new DriverError(
    {
      driver: 'hyperv',
      operation,
      ...(instanceId ? { instanceId } : {}),
      ...(retryable === undefined ? {} : { retryable }),
      ...(reschedule === undefined ? {} : { reschedule }),
    },
    e instanceof Error ? e.message : String(e),
    { cause: e },
  );
}
