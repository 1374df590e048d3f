import { DriverError, NovaError } from '@nova-lfs/core';

/** Stable error codes of the Docker driver (engine call failures are core `DriverError`s). */
export const DockerErrorCode = {
  Unavailable: 'NLFS_DOCKER_UNAVAILABLE',
} as const;

/** dockerd cannot be reached on its socket. */
export class DockerUnavailableError extends NovaError<{ socketPath: string }> {
  constructor(socketPath: string, options?: { cause?: unknown }) {
    super(DockerErrorCode.Unavailable, `dockerd does not answer on ${socketPath}`, { socketPath }, options);
  }
}

/** HTTP status of a dockerode error, if any. */
export function dockerStatus(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Wraps an Engine API failure in a typed `DriverError` keeping the engine's error as `cause`. */
export function wrapDockerError(operation: string, e: unknown, instanceId?: string): DriverError {
  if (e instanceof DriverError) return e;
  const status = dockerStatus(e);
  const message =
    (e as { json?: { message?: string } })?.json?.message ?? (e instanceof Error ? e.message : String(e));
  return new DriverError(
    { driver: 'docker', operation, ...(instanceId ? { instanceId } : {}) },
    status ? `${message} (HTTP ${status})` : message,
    { cause: e },
  );
}
