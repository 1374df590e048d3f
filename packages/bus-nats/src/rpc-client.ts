import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ValidationError } from '@nova-lfs/core';
import {
  decodeEnvelope,
  encodeEnvelope,
  issuesOf,
  operationIdSchema,
  type RequestEnvelope,
} from './envelope.js';
import {
  BusClosedError,
  BusMessageInvalidError,
  BusPermissionError,
  BusSenderMismatchError,
  RemoteCallError,
  type RpcCallDetails,
  RpcConnectionLostError,
  RpcDeadlineExceededError,
  RpcNoResponderError,
} from './errors.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import { classifyNatsFailure } from './nats-failure.js';
import type { RpcMethod } from './rpc-method.js';
import { busIdSchema, controlPlaneRpcSubject, rpcSubject } from './subjects.js';

/** Options of {@link BusRpcClient}. */
export interface BusRpcClientOptions {
  /** This control-plane process's id, written as `sender` of every request. */
  readonly senderId: string;
  /** Deadline of a call that does not say one, in ms (default 30 s). */
  readonly defaultDeadlineMs?: number;
  /** Where refused replies are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

/** Per-call options. */
export interface RpcCallOptions {
  /** Time the call may take, in ms, from now; sent to the agent as an epoch-ms deadline. */
  readonly deadlineMs?: number;
  /**
   * Makes the call idempotent on the agent: a retry with the same id (after a timeout or a lost
   * connection) returns the first call's outcome and never runs the handler twice.
   */
  readonly operationId?: string;
  /** Gives up early; the call rejects with the signal's reason (the agent may still run it). */
  readonly signal?: AbortSignal;
}

/**
 * The control-plane side of RPC: `call(hostId, method, payload, options)` sends a validated,
 * versioned request on `nova.agent.<hostId>.rpc.<method>` and resolves with the agent's
 * schema-checked result. It never hangs: it rejects with `RpcDeadlineExceededError` past its
 * deadline, `RpcConnectionLostError` if the connection drops while it is in flight,
 * `RpcNoResponderError` when no agent serves the host, `BusPermissionError` when NATS refuses
 * the subject, `RemoteCallError` (the remote code, message and details) when the handler failed,
 * and `BusMessageInvalidError` / `BusSenderMismatchError` for a reply that fails validation
 * (which is logged, never returned).
 */
export class BusRpcClient {
  private readonly senderId: string;
  private readonly defaultDeadlineMs: number;
  private readonly logger: BusLogger;
  private readonly now: () => number;
  private readonly inFlight = new Map<string, { call: RpcCallDetails; reject: (e: Error) => void }>();
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    options: BusRpcClientOptions,
  ) {
    this.senderId = busIdSchema.parse(options.senderId);
    this.defaultDeadlineMs = options.defaultDeadlineMs ?? 30_000;
    this.logger = options.logger ?? consoleBusLogger;
    this.now = options.now ?? Date.now;
    void this.watchConnection();
  }

  /** Number of calls awaiting a reply. */
  get pendingCalls(): number {
    return this.inFlight.size;
  }

  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect' || s.type === 'staleConnection') {
        for (const [id, p] of this.inFlight) {
          this.inFlight.delete(id);
          p.reject(new RpcConnectionLostError(p.call));
        }
      }
    }
    // The connection closed: whatever is still in flight will never get a reply.
    for (const [id, p] of this.inFlight) {
      this.inFlight.delete(id);
      p.reject(new BusClosedError(`${p.call.method} on host ${p.call.hostId}`));
    }
  }

  /**
   * Calls `method` on `hostId`'s agent. Throws core `ValidationError` (fields under `payload.`,
   * `hostId`, `options.operationId`) before sending anything when the input is invalid.
   */
  async call<P, R>(
    hostId: string,
    method: RpcMethod<P, R>,
    payload: P,
    options: RpcCallOptions = {},
  ): Promise<R> {
    const host = busIdSchema.safeParse(hostId);
    if (!host.success) throw new ValidationError(issuesOf(host.error, 'hostId'));
    return await this.send(rpcSubject(hostId, method.name), hostId, method, payload, options);
  }

  /**
   * The other direction: an agent calls `method` on the control-plane process `controlPlaneId`
   * (served by a `BusRpcServer` with `serves: 'controlPlane'`), on
   * `nova.cp.<controlPlaneId>.from.<senderId>.<method>`; this client's `senderId` is the agent's
   * host id. Same validation, deadlines and errors as {@link BusRpcClient.call}; the reply must
   * come from `controlPlaneId`.
   */
  async callControlPlane<P, R>(
    controlPlaneId: string,
    method: RpcMethod<P, R>,
    payload: P,
    options: RpcCallOptions = {},
  ): Promise<R> {
    const id = busIdSchema.safeParse(controlPlaneId);
    if (!id.success) throw new ValidationError(issuesOf(id.error, 'controlPlaneId'));
    const subject = controlPlaneRpcSubject(controlPlaneId, this.senderId, method.name);
    return await this.send(subject, controlPlaneId, method, payload, options);
  }

  /** Sends one request on `subject` and reads the reply of `hostId` (the responder). */
  private async send<P, R>(
    subject: string,
    hostId: string,
    method: RpcMethod<P, R>,
    payload: P,
    options: RpcCallOptions,
  ): Promise<R> {
    if (this.closed || this.nc.isClosed()) throw new BusClosedError(`${method.name} on host ${hostId}`);
    if (options.operationId !== undefined) {
      const op = operationIdSchema.safeParse(options.operationId);
      if (!op.success) throw new ValidationError(issuesOf(op.error, 'options.operationId'));
    }
    const checked = method.payload.safeParse(payload);
    if (!checked.success) throw new ValidationError(issuesOf(checked.error, 'payload'));
    const deadlineMs = options.deadlineMs ?? this.defaultDeadlineMs;
    const call: RpcCallDetails = {
      hostId,
      method: method.name,
      ...(options.operationId === undefined ? {} : { operationId: options.operationId }),
    };
    options.signal?.throwIfAborted();

    const sentAt = this.now();
    const request: RequestEnvelope = {
      v: 2,
      kind: 'request',
      id: randomUUID(),
      sender: this.senderId,
      sentAt,
      method: method.name,
      deadline: sentAt + deadlineMs,
      operationId: options.operationId,
      payload: checked.data,
    };
    return await new Promise<R>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(request.id);
        options.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const fail = (e: Error) => finish(() => reject(e));
      const onAbort = () => fail(options.signal?.reason as Error);
      const timer = setTimeout(() => fail(new RpcDeadlineExceededError(call, deadlineMs)), deadlineMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.inFlight.set(request.id, { call, reject: fail });

      // NATS's own timeout is a backstop; ours above decides.
      this.nc.request(subject, encodeEnvelope(request), { timeout: deadlineMs + 1000 }).then(
        (msg) => {
          if (settled) return;
          try {
            resolve(this.readReply(msg.subject || subject, msg.data, request, call, method));
            finish(() => undefined);
          } catch (e) {
            fail(e as Error);
          }
        },
        (e: unknown) => {
          if (settled) return;
          const failure = classifyNatsFailure(e);
          if (failure.kind === 'timeout') fail(new RpcDeadlineExceededError(call, deadlineMs, { cause: e }));
          else if (failure.kind === 'no-responders') fail(new RpcNoResponderError(call, { cause: e }));
          else if (failure.kind === 'permission') {
            fail(new BusPermissionError(failure.subject, failure.operation, { cause: e }));
          } else if (failure.kind === 'closed') {
            fail(new BusClosedError(`${method.name} on host ${hostId}`, { cause: e }));
          } else fail(new RpcConnectionLostError(call, { cause: e }));
        },
      );
    });
  }

  private readReply<R>(
    subject: string,
    data: Uint8Array,
    request: RequestEnvelope,
    call: RpcCallDetails,
    method: RpcMethod<unknown, R>,
  ): R {
    try {
      const reply = decodeEnvelope(subject, data, 'reply');
      if (reply.kind !== 'reply') throw new Error('unreachable');
      if (reply.sender !== call.hostId) throw new BusSenderMismatchError(subject, call.hostId, reply.sender);
      const uncorrelatedRefusal = reply.inReplyTo === 'unknown' && !reply.outcome.ok;
      if (reply.inReplyTo !== request.id && !uncorrelatedRefusal) {
        throw new BusMessageInvalidError(subject, [
          {
            path: 'inReplyTo',
            rule: 'correlation',
            message: `reply to ${reply.inReplyTo}, not ${request.id}`,
          },
        ]);
      }
      if (!reply.outcome.ok) throw new RemoteCallError(call, reply.outcome.error);
      const result = method.result.safeParse(reply.outcome.result);
      if (!result.success) throw new BusMessageInvalidError(subject, issuesOf(result.error, 'result'));
      return result.data;
    } catch (e) {
      if (!(e instanceof RemoteCallError)) {
        const code = (e as { code?: unknown }).code;
        this.logger.warn('rpc reply refused', {
          ...call,
          subject,
          code,
          details: (e as { details?: unknown }).details,
        });
      }
      throw e;
    }
  }

  /** Stops accepting calls and rejects those in flight with `BusClosedError`. Does not close `nc`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.inFlight) {
      this.inFlight.delete(id);
      p.reject(new BusClosedError(`${p.call.method} on host ${p.call.hostId}`));
    }
  }
}
