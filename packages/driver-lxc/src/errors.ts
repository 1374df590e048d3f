import { ConfigurationError, DriverError, ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';

/** Stable error codes of the LXC driver (operation failures are core `DriverError`s). */
export const LxcErrorCode = {
  Unavailable: ErrorCode.LxcUnavailable,
  Command: ErrorCode.LxcCommand,
  ConfigValue: ErrorCode.LxcConfigValue,
} as const;

/** The `lxc-*` tools were not found (or do not run): names every place that was tried. */
export class LxcUnavailableError extends NovaError<{ tried: readonly string[] }> {
  constructor(tried: readonly string[], options?: { cause?: unknown }) {
    super(
      LxcErrorCode.Unavailable,
      `LXC tools not found or not runnable (tried ${tried.join(', ')}); install Debian's lxc (apt-get install lxc) or pass lxcBinDir`,
      { tried },
      options,
    );
  }
}

/** Details of a failed `lxc-*` (or `tar`) run. */
export interface LxcCommandDetails {
  /** The program, e.g. `lxc-start`. */
  readonly command: string;
  /** Its arguments (never user text: names come from instance uuids). */
  readonly args: readonly string[];
  /** Exit code, when it exited. */
  readonly exitCode?: number;
  /** Signal that ended it (a timeout or abort kills it). */
  readonly signal?: string;
  /** Last lines of its standard error. */
  readonly stderr: string;
  /** Whether it was killed because it ran past its own timeout. */
  readonly timedOut: boolean;
}

/** An `lxc-*` or `tar` run that failed; kept as the `cause` of a `DriverError`. */
export class LxcCommandError extends NovaError<LxcCommandDetails> {
  constructor(details: LxcCommandDetails, options?: { cause?: unknown }) {
    const how = details.timedOut
      ? 'timed out'
      : details.exitCode !== undefined
        ? `exited with ${details.exitCode}`
        : `was killed by ${details.signal ?? 'a signal'}`;
    super(
      LxcErrorCode.Command,
      `${details.command} ${how}${details.stderr ? `: ${details.stderr}` : ''}`,
      details,
      options,
    );
  }
}

/**
 * A value that must not go into the line-based container config (a newline, carriage return or
 * NUL would start a new `key = value` line). Values the driver writes are built from validated
 * settings and instance uuids, so this is a bug or a hostile setting, never a user's name.
 */
export class LxcConfigValueError extends NovaError<{ key: string }> {
  constructor(key: string) {
    super(LxcErrorCode.ConfigValue, `refusing to write ${key}: its value holds a line break or NUL`, { key });
  }
}

/** A setting of `LxcDriver` that cannot work (e.g. an lxcPath with whitespace). */
export class LxcSettingError extends ConfigurationError {}

/** What only the caller knows about a failure (e.g. that no host could run this image). */
export interface LxcFailureClass {
  readonly retryable?: boolean;
  readonly reschedule?: boolean;
}

/**
 * Wraps a failure in a typed `DriverError` (driver `lxc`) keeping it as `cause`. An image whose
 * bytes fail their sha256 neither retries nor reschedules; a command that timed out is retryable.
 */
export function wrapLxcError(
  operation: string,
  e: unknown,
  instanceId?: string,
  klass: LxcFailureClass = {},
): DriverError {
  if (e instanceof DriverError) return e;
  const badImage = isNovaError(e, ErrorCode.ImageChecksum);
  const timedOut = e instanceof LxcCommandError && e.details.timedOut;
  const retryable = klass.retryable ?? (badImage ? false : timedOut ? true : undefined);
  const reschedule = klass.reschedule ?? (badImage ? false : undefined);
  return new DriverError(
    {
      driver: 'lxc',
      operation,
      ...(instanceId ? { instanceId } : {}),
      ...(retryable === undefined ? {} : { retryable }),
      ...(reschedule === undefined ? {} : { reschedule }),
    },
    e instanceof Error ? e.message : String(e),
    { cause: e },
  );
}
