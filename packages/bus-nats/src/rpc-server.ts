import { randomUUID } from 'node:crypto';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  ConfigurationError,
  DeadlineExceededError,
  ErrorCode,
  isNovaError,
  ValidationError,
} from '@nova-lfs/core';
import {
  decodeEnvelope,
  type EnvelopeVersion,
  encodeEnvelope,
  issuesOf,
  type ReplyEnvelope,
  type RequestEnvelope,
} from './envelope.js';
import {
  BusClosedError,
  BusErrorCode,
  BusMessageInvalidError,
  BusSenderMismatchError,
  type WireError,
} from './errors.js';
import { IdempotencyCache, type IdempotencyOptions } from './idempotency-cache.js';
import { type BusLogger, consoleBusLogger } from './logger.js';
import type { RpcMethod } from './rpc-method.js';
import {
  busIdSchema,
  controlPlaneRpcWildcard,
  methodOfSubject,
  parseControlPlaneRpcSubject,
  rpcWildcard,
} from './subjects.js';
import { toWireError } from './wire-error.js';

/** What a handler knows about the call it serves. */
export interface RpcContext {
  /** This agent's host id (a control plane's server: its own id). */
  readonly hostId: string;
  /**
   * The caller's id: a control-plane process's, as its message claims; on a control plane's
   * server (`serves: 'controlPlane'`) the calling agent's host id, checked against the subject
   * (which NATS permissions let only that agent publish on).
   */
  readonly sender: string;
  /** The request's message id. */
  readonly messageId: string;
  /** The call's operation id (absent for v1 callers, which have no idempotency). */
  readonly operationId: string | undefined;
  /** The caller's deadline, epoch ms. */
  readonly deadline: number;
  /**
   * Aborts at the deadline (reason: core `DeadlineExceededError`) or when the server stops. A
   * retried call with the same operation id joins the first run, so honour it and clean up.
   */
  readonly signal: AbortSignal;
  /** The schema version the caller wrote. */
  readonly version: EnvelopeVersion;
}

/** Serves one RPC method: the payload is already validated; the result is validated before sending. */
export type RpcHandler<P, R> = (payload: P, context: RpcContext) => Promise<R> | R;

/** Options of {@link BusRpcServer}. */
export interface BusRpcServerOptions {
  /**
   * The host this agent serves (`nova.agent.<hostId>.rpc.>`); with `serves: 'controlPlane'`,
   * this control-plane process's id (`nova.cp.<id>.from.*.>`).
   */
  readonly hostId: string;
  /**
   * Whose requests are served: `agent` (default), the control plane's calls to this agent;
   * `controlPlane`, agents' calls to this control-plane process (one subscription, no queue),
   * each refused unless its `sender` is the host its subject names.
   */
  readonly serves?: 'agent' | 'controlPlane';
  /** Where refused messages are reported (default: JSON lines on stderr). */
  readonly logger?: BusLogger;
  /** Bounds of the memory of recent operation ids. */
  readonly idempotency?: IdempotencyOptions;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: WireError };

interface Registered {
  readonly method: RpcMethod<unknown, unknown>;
  readonly handler: RpcHandler<unknown, unknown>;
}

/**
 * The agent side of RPC: handlers per method on `nova.agent.<hostId>.rpc.<method>`, served from
 * one queue subscription. Every request is validated (envelope, version, subject/method match,
 * payload schema) before any handler runs; a refused request is logged and answered with a typed
 * error. Calls with an operation id run once: a retry while the first runs joins it, a retry
 * after it finished gets its outcome (bounded memory; a retryable failure is not remembered).
 * Replies are written in the request's schema version.
 */
export class BusRpcServer {
  private readonly hostId: string;
  private readonly logger: BusLogger;
  private readonly now: () => number;
  private readonly handlers = new Map<string, Registered>();
  private readonly calls: IdempotencyCache<Outcome>;
  private readonly running = new Set<AbortController>();
  private subscription: Subscription | undefined;
  private stopped = false;
  private readonly servesControlPlane: boolean;

  constructor(
    private readonly nc: NatsConnection,
    options: BusRpcServerOptions,
  ) {
    this.hostId = busIdSchema.parse(options.hostId);
    this.servesControlPlane = options.serves === 'controlPlane';
    this.logger = options.logger ?? consoleBusLogger;
    this.now = options.now ?? Date.now;
    this.calls = new IdempotencyCache<Outcome>(options.idempotency, this.now);
  }

  /** Registers the handler of `method`. Registering a method twice is a `ConfigurationError`. */
  handle<P, R>(method: RpcMethod<P, R>, handler: RpcHandler<P, R>): this {
    if (this.handlers.has(method.name)) {
      throw new ConfigurationError('method', `RPC method ${method.name} already has a handler`);
    }
    this.handlers.set(method.name, {
      method: method as RpcMethod<unknown, unknown>,
      handler: handler as RpcHandler<unknown, unknown>,
    });
    return this;
  }

  /** Number of operation ids remembered (running or finished). */
  get rememberedCalls(): number {
    return this.calls.size;
  }

  /**
   * Subscribes and waits until the server has the subscription (a flush), so a call made after
   * this resolves is served. Throws `BusClosedError` after `stop()`.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new BusClosedError('BusRpcServer.start');
    if (this.subscription) return;
    const subject = this.servesControlPlane ? controlPlaneRpcWildcard(this.hostId) : rpcWildcard(this.hostId);
    this.subscription = this.nc.subscribe(subject, {
      ...(this.servesControlPlane ? {} : { queue: `agent-${this.hostId}` }),
      callback: (err, msg) => {
        if (err) {
          this.logger.warn('rpc subscription failed', { hostId: this.hostId, error: err.message });
          return;
        }
        void this.serve(msg);
      },
    });
    await this.nc.flush();
  }

  /** Unsubscribes (letting delivered requests finish) and aborts running handlers. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const sub = this.subscription;
    this.subscription = undefined;
    if (sub && !this.nc.isClosed()) await sub.drain().catch(() => undefined);
    for (const c of this.running) c.abort(new BusClosedError('BusRpcServer'));
  }

  private refuse(msg: Msg, e: unknown, extra: Record<string, unknown> = {}, request?: RequestEnvelope): void {
    const error = toWireError(e);
    this.logger.warn('rpc request refused', {
      hostId: this.hostId,
      subject: msg.subject,
      code: error.code,
      ...(isNovaError(e) ? { details: error.details } : { error: error.message }),
      ...extra,
    });
    if (msg.reply) this.reply(msg, request, { ok: false, error });
  }

  private reply(msg: Msg, request: RequestEnvelope | undefined, outcome: Outcome): void {
    const reply: ReplyEnvelope = {
      v: request?.v ?? 2,
      kind: 'reply',
      id: randomUUID(),
      sender: this.hostId,
      sentAt: this.now(),
      inReplyTo: request?.id ?? 'unknown',
      outcome,
    };
    try {
      msg.respond(encodeEnvelope(reply, reply.v));
    } catch (e) {
      this.logger.warn('rpc reply not sent', { hostId: this.hostId, subject: msg.subject, error: String(e) });
    }
  }

  private async serve(msg: Msg): Promise<void> {
    let request: RequestEnvelope;
    try {
      request = decodeEnvelope(msg.subject, msg.data, 'request') as RequestEnvelope;
    } catch (e) {
      this.refuse(msg, e);
      return;
    }
    const route = this.servesControlPlane
      ? parseControlPlaneRpcSubject(msg.subject)
      : { method: methodOfSubject(msg.subject) };
    const method = route?.method;
    if (route && 'hostId' in route && route.hostId !== request.sender) {
      this.refuse(msg, new BusSenderMismatchError(msg.subject, route.hostId, request.sender), {}, request);
      return;
    }
    if (method === undefined || method !== request.method) {
      this.refuse(
        msg,
        new BusMessageInvalidError(msg.subject, [
          {
            path: 'method',
            rule: 'subject',
            message: `method ${request.method} sent on the subject of ${method}`,
          },
        ]),
        {},
        request,
      );
      return;
    }
    if (!msg.reply) {
      this.refuse(
        msg,
        new BusMessageInvalidError(msg.subject, [
          { path: '', rule: 'reply', message: 'a request needs a reply subject' },
        ]),
      );
      return;
    }
    const registered = this.handlers.get(method);
    if (!registered) {
      const error: WireError = {
        code: BusErrorCode.UnknownMethod,
        message: `host ${this.hostId} serves no RPC method ${method}`,
        details: { method, hostId: this.hostId },
      };
      this.logger.warn('rpc request refused', {
        hostId: this.hostId,
        subject: msg.subject,
        code: error.code,
      });
      this.reply(msg, request, { ok: false, error });
      return;
    }
    const remainingMs = request.deadline - this.now();
    if (remainingMs <= 0) {
      this.refuse(
        msg,
        new DeadlineExceededError({ operation: method, timeoutMs: 0, hostId: this.hostId }),
        { deadline: request.deadline },
        request,
      );
      return;
    }
    const parsed = registered.method.payload.safeParse(request.payload);
    if (!parsed.success) {
      this.refuse(
        msg,
        new ValidationError(issuesOf(parsed.error, 'payload')),
        { sender: request.sender },
        request,
      );
      return;
    }
    const run = () => this.run(registered, parsed.data, request, remainingMs);
    const outcome = request.operationId
      ? await this.calls.run(`${method}\u0000${request.operationId}`, run, remembered)
      : await run();
    // Past its deadline the caller has given up (its own timer rejects it with a deadline error);
    // a reply now would race that timer and could turn a call cut by its deadline into a success.
    // The idempotency record above still keeps a finished outcome for a retry.
    if (this.now() >= request.deadline) return;
    this.reply(msg, request, outcome);
  }

  private async run(
    registered: Registered,
    payload: unknown,
    request: RequestEnvelope,
    remainingMs: number,
  ): Promise<Outcome> {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new DeadlineExceededError({
            operation: request.method,
            timeoutMs: remainingMs,
            hostId: this.hostId,
          }),
        ),
      remainingMs,
    );
    this.running.add(controller);
    try {
      const result = await registered.handler(payload, {
        hostId: this.hostId,
        sender: request.sender,
        messageId: request.id,
        operationId: request.operationId,
        deadline: request.deadline,
        signal: controller.signal,
        version: request.v,
      });
      const checked = registered.method.result.safeParse(result);
      if (!checked.success) {
        const e = new BusMessageInvalidError(request.method, issuesOf(checked.error, 'result'));
        this.logger.warn('rpc handler result refused', {
          hostId: this.hostId,
          method: request.method,
          code: e.code,
        });
        return { ok: false, error: toWireError(e) };
      }
      return { ok: true, result: checked.data };
    } catch (e) {
      return { ok: false, error: toWireError(e) };
    } finally {
      clearTimeout(timer);
      this.running.delete(controller);
    }
  }
}

/**
 * A finished call is remembered unless it failed in a way a retry may fix: a retryable error, or
 * a handler cut by its deadline (it did not finish, so a retry runs it again).
 */
function remembered(outcome: Outcome): boolean {
  if (outcome.ok) return true;
  return outcome.error.details.retryable !== true && outcome.error.code !== ErrorCode.DeadlineExceeded;
}
