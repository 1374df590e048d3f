/**
 * `@nova-lfs/bus-nats`: the message bus between the control plane and compute agents over NATS:
 * versioned, zod-validated envelopes; RPC with deadlines, idempotency by operation id and typed
 * remote errors; host events; host heartbeats in JetStream KV.
 * @packageDocumentation
 */
export { type BusBackoff, backoffDelay, defaultBusBackoff } from './backoff.js';
export { type BusEvent, defineBusEvent } from './bus-event.js';
export { type BusConnectionOptions, connectBus } from './connection.js';
export {
  ACCEPTED_VERSIONS,
  CURRENT_VERSION,
  decodeEnvelope,
  type Envelope,
  type EnvelopeKind,
  type EnvelopeVersion,
  type EventEnvelope,
  encodeEnvelope,
  type HeartbeatEnvelope,
  type ReplyEnvelope,
  type RequestEnvelope,
} from './envelope.js';
export {
  BusClosedError,
  BusErrorCode,
  BusMessageInvalidError,
  BusPermissionError,
  BusSenderMismatchError,
  BusUnavailableError,
  BusVersionUnsupportedError,
  RemoteCallError,
  type RpcCallDetails,
  RpcConnectionLostError,
  RpcDeadlineExceededError,
  RpcNoResponderError,
  type WireError,
} from './errors.js';
export { BusEventPublisher, type BusEventPublisherOptions } from './event-publisher.js';
export {
  BusEventSubscriber,
  type BusEventSubscriberOptions,
  type ReceivedBusEvent,
} from './event-subscriber.js';
export { HeartbeatPublisher, type HeartbeatPublisherOptions } from './heartbeat-publisher.js';
export {
  HostLiveness,
  type HostLivenessChange,
  type HostLivenessOptions,
  type HostLivenessReason,
  type HostLivenessState,
} from './host-liveness.js';
export {
  createOrWaitForHostsBucket,
  ensureHostsBucket,
  HOSTS_BUCKET,
  type HostsBucketWaitOptions,
  hostsBucketWaitBackoff,
  openHostsBucket,
} from './hosts-bucket.js';
export type { IdempotencyOptions } from './idempotency-cache.js';
export { type BusLogger, consoleBusLogger } from './logger.js';
export { agentInboxPrefix, agentPermissions, type NatsPermissions } from './permissions.js';
export { BusRpcClient, type BusRpcClientOptions, type RpcCallOptions } from './rpc-client.js';
export { defineRpcMethod, type RpcMethod } from './rpc-method.js';
export { BusRpcServer, type BusRpcServerOptions, type RpcContext, type RpcHandler } from './rpc-server.js';
export {
  busIdSchema,
  controlPlaneRequestsOf,
  controlPlaneRpcSubject,
  eventsSubject,
  hostSubjects,
  rpcSubject,
} from './subjects.js';
