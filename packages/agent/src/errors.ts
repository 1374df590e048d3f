import { BusErrorCode, RemoteCallError } from '@nova-lfs/bus-nats';
import {
  DeadlineExceededError,
  DriverError,
  type DriverErrorDetails,
  ErrorCode,
  isNovaError,
  NovaError,
} from '@nova-lfs/core';

/** Stable error codes of the agent package. */
export const AgentErrorCode = {
  /** The agent's command line or options are invalid. */
  Arguments: ErrorCode.AgentArguments,
  /** The agent's first contact (`driver.describe`) failed or answered a different host. */
  Unreachable: ErrorCode.AgentUnreachable,
} as const;
/** Union of the agent error codes. */
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

/** The agent's command line is invalid: which option, and why. */
export class AgentArgumentsError extends NovaError<{ option: string }> {
  constructor(option: string, message: string) {
    super(AgentErrorCode.Arguments, message, { option });
  }
}

/** {@link RemoteDriver.connect} could not describe the agent of `hostId`. `cause` keeps the bus error. */
export class AgentUnreachableError extends NovaError<{ hostId: string; retryable: true }> {
  constructor(hostId: string, options?: { cause?: unknown }) {
    super(
      AgentErrorCode.Unreachable,
      `the agent of host ${hostId} did not answer driver.describe`,
      {
        hostId,
        retryable: true,
      },
      options,
    );
  }
}

/** Remote codes a retry of the same call may fix (the agent was busy, restarting, cut short). */
const retryableRemoteCodes = new Set<string>([
  ErrorCode.DeadlineExceeded,
  BusErrorCode.Closed,
  BusErrorCode.ConnectionLost,
  BusErrorCode.NoResponder,
  BusErrorCode.Unavailable,
  ErrorCode.Unexpected,
]);

/** The bus failures that mean "the agent is not there right now": retried with the same operation id. */
export function isTransientBusFailure(e: unknown): boolean {
  return (
    isNovaError(e) &&
    !(e instanceof RemoteCallError) &&
    (e.code === BusErrorCode.NoResponder || e.code === BusErrorCode.ConnectionLost)
  );
}

/**
 * The error the engine gets for a failed remote driver call: a core `DriverError` whose
 * `retryable` and `reschedule` say what the engine may do (a remote `DriverError` keeps its own),
 * or a core `DeadlineExceededError` when the call ran out of time. `cause` keeps the bus error.
 */
export function toDriverError(
  e: unknown,
  call: { driver: string; operation: string; hostId: string; instanceId?: string; timeoutMs?: number },
): Error {
  const base: DriverErrorDetails = {
    driver: call.driver,
    operation: call.operation,
    hostId: call.hostId,
    ...(call.instanceId ? { instanceId: call.instanceId } : {}),
  };
  if (e instanceof RemoteCallError) {
    const d = e.details;
    if (e.code === ErrorCode.Driver) {
      const prefix = `${String(d.driver)} ${String(d.operation)} failed: `;
      const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
      return new DriverError(
        {
          ...base,
          // which image an agent could not fetch, and why (see imageFetchFailure)
          ...(typeof d.imageId === 'string' ? { imageId: d.imageId } : {}),
          ...(typeof d.imageFetch === 'string' ? { imageFetch: d.imageFetch } : {}),
          ...(typeof d.retryable === 'boolean' ? { retryable: d.retryable } : {}),
          ...(typeof d.reschedule === 'boolean' ? { reschedule: d.reschedule } : {}),
          remoteCode: e.code,
        } as DriverErrorDetails,
        message,
        { cause: e },
      );
    }
    if (e.code === ErrorCode.DeadlineExceeded) {
      return deadline(call, e);
    }
    const retryable = retryableRemoteCodes.has(e.code) || d.retryable === true;
    // a request the agent refuses as invalid is refused by every agent of this version
    const reschedule = !(e.code === ErrorCode.Validation || e.code === BusErrorCode.MessageInvalid);
    return new DriverError(
      { ...base, retryable, reschedule, remoteCode: e.code } as DriverErrorDetails,
      `agent answered ${e.code}: ${e.message}`,
      { cause: e },
    );
  }
  if (isNovaError(e, ErrorCode.DeadlineExceeded)) return deadline(call, e);
  if (isNovaError(e) && e.code === ErrorCode.Validation) {
    // the payload failed the protocol's schema here: no host of this protocol can take it
    return new DriverError(
      { ...base, retryable: false, reschedule: false },
      `invalid request: ${e.message}`,
      {
        cause: e,
      },
    );
  }
  const code = isNovaError(e) ? e.code : undefined;
  const retryable = code !== BusErrorCode.PermissionDenied && code !== BusErrorCode.Closed;
  return new DriverError(
    { ...base, retryable, reschedule: true, ...(code ? { busCode: code } : {}) } as DriverErrorDetails,
    `agent unreachable: ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}

function deadline(
  call: { operation: string; hostId: string; instanceId?: string; timeoutMs?: number },
  cause: unknown,
): DeadlineExceededError {
  const err = new DeadlineExceededError({
    operation: call.operation,
    timeoutMs: call.timeoutMs ?? 0,
    hostId: call.hostId,
    ...(call.instanceId ? { instanceId: call.instanceId } : {}),
  });
  Object.defineProperty(err, 'cause', {
    value: cause,
    enumerable: false,
    configurable: true,
    writable: true,
  });
  return err;
}

/** Why an agent could not get a call's image: the `imageFetch` detail of its `DriverError`. */
export type ImageFetchFailure = 'missing' | 'checksum' | 'connection' | 'invalid';

/**
 * The `DriverError` of an image the agent could not fetch from its control plane (or read from
 * the shared directory), naming the image (`imageId`), who was to serve it (`servedBy`) and why
 * (`imageFetch`), with the typed error as `cause`:
 * - `checksum` (core `ImageChecksumError`): the bytes are not the recorded ones; no host helps
 *   (`reschedule: false`), as a local driver's checksum failure;
 * - `missing` (`NLFS_NOT_FOUND`: no control plane serves it to this host): `reschedule: false`;
 * - `invalid` (a stream past its size, without progress, or a refused request): `reschedule: false`;
 * - `connection` (lost connection, deadline, no responder, anything else): retryable, another
 *   host may do.
 */
export function imageFetchFailure(
  e: unknown,
  call: DriverErrorDetails & { imageId: string; servedBy: string | undefined },
): DriverError {
  const code = isNovaError(e) ? e.code : undefined;
  const reason: ImageFetchFailure =
    code === ErrorCode.ImageChecksum
      ? 'checksum'
      : code === ErrorCode.NotFound
        ? 'missing'
        : code === ErrorCode.Validation || code === BusErrorCode.MessageInvalid
          ? 'invalid'
          : 'connection';
  const final = reason !== 'connection';
  const { servedBy, ...details } = call;
  const from = servedBy ? `control plane ${servedBy}` : 'no control plane (none serves it over the bus)';
  return new DriverError(
    {
      ...details,
      ...(servedBy ? { servedBy } : {}),
      imageFetch: reason,
      retryable: !final,
      reschedule: !final,
    } as DriverErrorDetails,
    `image ${call.imageId} not fetched from ${from} (${reason}): ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}
