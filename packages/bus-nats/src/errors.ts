import { ErrorCode, type FieldIssue, isErrorCode, NovaError } from '@nova-lfs/core';

/**
 * Stable error codes of the bus. A deadline reuses core's `NLFS_DEADLINE_EXCEEDED`, so code that
 * handles a driver call's timeout handles a remote one the same way.
 */
export const BusErrorCode = {
  Unavailable: ErrorCode.BusUnavailable,
  MessageInvalid: ErrorCode.BusMessageInvalid,
  VersionUnsupported: ErrorCode.BusVersionUnsupported,
  SenderMismatch: ErrorCode.BusSenderMismatch,
  UnknownMethod: ErrorCode.BusUnknownMethod,
  NoResponder: ErrorCode.BusNoResponder,
  ConnectionLost: ErrorCode.BusConnectionLost,
  PermissionDenied: ErrorCode.BusPermissionDenied,
  Closed: ErrorCode.BusClosed,
  DeadlineExceeded: ErrorCode.DeadlineExceeded,
} as const;

/** Union of the bus error codes. */
export type BusErrorCode = (typeof BusErrorCode)[keyof typeof BusErrorCode];

/** No NATS server answered when connecting (`servers` lists what was tried). */
export class BusUnavailableError extends NovaError<{ servers: readonly string[]; retryable: true }> {
  constructor(servers: readonly string[], options?: { cause?: unknown }) {
    super(
      BusErrorCode.Unavailable,
      `no NATS server answers at ${servers.join(', ')}`,
      { servers, retryable: true },
      options,
    );
  }
}

/**
 * A message failed the envelope or payload schema (or is not JSON). It was refused and logged,
 * never acted on. `issues` name the field path and the rule broken.
 */
export class BusMessageInvalidError extends NovaError<{ subject: string; issues: readonly FieldIssue[] }> {
  constructor(subject: string, issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    const first = issues[0];
    super(
      BusErrorCode.MessageInvalid,
      `invalid message on ${subject}${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`,
      { subject, issues },
      options,
    );
  }
}

/**
 * A message carries a schema version this process does not accept (the rule: the current version
 * N and its predecessor N-1; see `ACCEPTED_VERSIONS`).
 */
export class BusVersionUnsupportedError extends NovaError<{
  subject: string;
  version: unknown;
  accepted: readonly number[];
}> {
  constructor(subject: string, version: unknown, accepted: readonly number[]) {
    super(
      BusErrorCode.VersionUnsupported,
      `message on ${subject} has schema version ${JSON.stringify(version)}; accepted: ${accepted.join(', ')}`,
      { subject, version, accepted },
    );
  }
}

/**
 * A message's `sender` is not the host its subject (or KV key) belongs to: a forgery, or a
 * misconfigured agent. Refused and logged.
 */
export class BusSenderMismatchError extends NovaError<{
  subject: string;
  expected: string;
  claimed: string;
}> {
  constructor(subject: string, expected: string, claimed: string) {
    super(
      BusErrorCode.SenderMismatch,
      `message on ${subject} claims sender ${JSON.stringify(claimed)}, expected ${JSON.stringify(expected)}`,
      { subject, expected, claimed },
    );
  }
}

/** Details common to the failures of one RPC call. */
export interface RpcCallDetails {
  /** The host whose agent was called. */
  readonly hostId: string;
  /** The RPC method, e.g. `driver.spawn`. */
  readonly method: string;
  /** The call's operation id, when it had one (retry with it: the agent runs the call once). */
  readonly operationId?: string;
}

/**
 * An RPC got no reply within its deadline. The agent may still run (or have run) the call: retry
 * with the same operation id to get its result without running it twice. `details.operation` is the
 * method, as in core's `DeadlineExceededError`.
 */
export class RpcDeadlineExceededError extends NovaError<
  RpcCallDetails & { operation: string; timeoutMs: number; retryable: true }
> {
  constructor(call: RpcCallDetails, timeoutMs: number, options?: { cause?: unknown }) {
    super(
      BusErrorCode.DeadlineExceeded,
      `${call.method} on host ${call.hostId} exceeded its ${timeoutMs} ms deadline`,
      { ...call, operation: call.method, timeoutMs, retryable: true },
      options,
    );
  }
}

/** Nobody serves the host's RPC subject: its agent is not connected. Retrying later may help. */
export class RpcNoResponderError extends NovaError<RpcCallDetails & { retryable: true }> {
  constructor(call: RpcCallDetails, options?: { cause?: unknown }) {
    super(
      BusErrorCode.NoResponder,
      `no agent serves ${call.method} for host ${call.hostId}`,
      { ...call, retryable: true },
      options,
    );
  }
}

/**
 * The NATS connection dropped while the call was in flight: whether the agent ran it is unknown.
 * Retry with the same operation id once the connection is back.
 */
export class RpcConnectionLostError extends NovaError<RpcCallDetails & { retryable: true }> {
  constructor(call: RpcCallDetails, options?: { cause?: unknown }) {
    super(
      BusErrorCode.ConnectionLost,
      `connection lost during ${call.method} on host ${call.hostId}`,
      { ...call, retryable: true },
      options,
    );
  }
}

/** The NATS server refused a publish or subscription by this connection's permissions. */
export class BusPermissionError extends NovaError<{
  subject: string;
  operation: 'publish' | 'subscription';
  retryable: false;
}> {
  constructor(subject: string, operation: 'publish' | 'subscription', options?: { cause?: unknown }) {
    super(
      BusErrorCode.PermissionDenied,
      `NATS permissions refuse ${operation} on ${subject}`,
      { subject, operation, retryable: false },
      options,
    );
  }
}

/** The client, server or connection was closed; nothing more is sent or served. */
export class BusClosedError extends NovaError<{ operation: string }> {
  constructor(operation: string, options?: { cause?: unknown }) {
    super(BusErrorCode.Closed, `bus closed: ${operation} refused`, { operation }, options);
  }
}

/** An error as it crosses the wire: code, message and JSON details, never a stack. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly details: Record<string, unknown>;
}

/**
 * The agent's handler failed. `code`, `message` and `details` are the remote error's own (a
 * remote `DriverError` arrives with `code === 'NLFS_DRIVER_ERROR'` and its `retryable` and
 * `reschedule` in `details`), so `isNovaError(e, code)` works across the wire. The remote stack
 * is never sent.
 */
export class RemoteCallError extends NovaError<Record<string, unknown>> {
  /** The host whose agent answered. */
  readonly hostId: string;
  /** The RPC method called. */
  readonly method: string;
  /** The call's operation id, if any. */
  readonly operationId: string | undefined;

  constructor(call: RpcCallDetails, remote: WireError) {
    // a code this version does not know (a newer peer's) arrives as NLFS_UNEXPECTED, keeping it
    const known = isErrorCode(remote.code);
    super(
      known ? remote.code : ErrorCode.Unexpected,
      remote.message,
      known ? remote.details : { ...remote.details, remoteCode: remote.code },
    );
    this.hostId = call.hostId;
    this.method = call.method;
    this.operationId = call.operationId;
  }

  /** Whether the remote error says retrying may help (its `details.retryable`, default false). */
  get retryable(): boolean {
    return this.details.retryable === true;
  }
}
