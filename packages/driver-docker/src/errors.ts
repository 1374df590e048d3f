import { ConfigurationError, DriverError, ErrorCode, isNovaError, NovaError } from '@nova-lfs/core';

/** Stable error codes of the Docker driver (engine call failures are core `DriverError`s). */
export const DockerErrorCode = {
  Unavailable: ErrorCode.DockerUnavailable,
} as const;

/** dockerd cannot be reached on its socket. */
export class DockerUnavailableError extends NovaError<{ socketPath: string }> {
  constructor(socketPath: string, options?: { cause?: unknown }) {
    super(DockerErrorCode.Unavailable, `dockerd does not answer on ${socketPath}`, { socketPath }, options);
  }
}

/**
 * A second live `DockerDriver` in this process claimed a label scope (`nova-lfs.host=<hostId>`)
 * that another driver already holds on the same dockerd: each would list the other's containers
 * as its own, and reconciliation would take them for orphans. Give each host its own `hostId`.
 */
export class DockerScopeConflictError extends ConfigurationError {
  constructor(hostId: string, daemonId: string) {
    super(
      'hostId',
      `another DockerDriver in this process already serves hostId ${JSON.stringify(hostId)} on dockerd ${daemonId}: give each host its own hostId (new DockerDriver({ hostId }))`,
    );
  }
}

/** HTTP status of a dockerode error, if any. */
export function dockerStatus(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Socket-level failures: dockerd is down, restarting or dropped the connection. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAGAIN',
]);

/**
 * Whether trying the same Engine API call again may help: yes for a lost or refused connection
 * and for dockerd's 5xx answers (busy, internal, unavailable); no for 4xx answers (bad request,
 * no such object, conflicting state); undefined when the failure says nothing either way.
 */
export function dockerRetryable(e: unknown): boolean | undefined {
  const status = dockerStatus(e);
  if (status !== undefined) return status >= 500;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  if (/socket hang up/i.test((e as Error | null)?.message ?? '')) return true;
  return undefined;
}

/** What only the caller knows about a failure (e.g. that no host could run this image). */
export interface DockerFailureClass {
  readonly retryable?: boolean;
  readonly reschedule?: boolean;
}

/**
 * Wraps an Engine API failure in a typed `DriverError` keeping the engine's error as `cause`,
 * with `retryable` from {@link dockerRetryable} unless `klass` says otherwise. An image whose
 * bytes fail their sha256 check neither retries nor reschedules.
 */
export function wrapDockerError(
  operation: string,
  e: unknown,
  instanceId?: string,
  klass: DockerFailureClass = {},
): DriverError {
  if (e instanceof DriverError) return e;
  const status = dockerStatus(e);
  const message =
    (e as { json?: { message?: string } })?.json?.message ?? (e instanceof Error ? e.message : String(e));
  const badImage = isNovaError(e, ErrorCode.ImageChecksum);
  const retryable = klass.retryable ?? (badImage ? false : dockerRetryable(e));
  const reschedule = klass.reschedule ?? (badImage ? false : undefined);
  return new DriverError(
    {
      driver: 'docker',
      operation,
      ...(instanceId ? { instanceId } : {}),
      ...(retryable === undefined ? {} : { retryable }),
      ...(reschedule === undefined ? {} : { reschedule }),
    },
    status ? `${message} (HTTP ${status})` : message,
    { cause: e },
  );
}
