/**
 * `@nova-lfs/agent`: the per-host compute agent (`AgentService`, command `nova-lfs-agent`) and
 * the control plane's `RemoteDriver` for an agent host, over `@nova-lfs/bus-nats`; the wire
 * contract both share (`driverRpc`, `powerStateEvent`, `agentStartedEvent`); and
 * `bindHostLiveness`, which marks hosts down and up in the engine from their heartbeats.
 * @packageDocumentation
 */
export {
  type AgentCommandOptions,
  agentUsage,
  parseAgentArgs,
  type RunningAgent,
  runAgent,
} from './agent-command.js';
export { AgentImageCache, type AgentImageCacheOptions } from './agent-image-cache.js';
export { AgentImageServer, type AgentImageServerOptions } from './agent-image-server.js';
export { agentMain } from './agent-main.js';
export { AgentService, type AgentServiceOptions, type AgentStartReport } from './agent-service.js';
export {
  type AgentDescription,
  agentDescriptionSchema,
  agentStartedEvent,
  blockDeviceSchema,
  capabilitiesSchema,
  DRIVER_PROTOCOL_REVISION,
  driverInstanceSchema,
  driverRpc,
  hostReportSchema,
  type ImageArtifact,
  imageArtifactSchema,
  portBindingSchema,
  powerStateEvent,
  type SpawnPayload,
  spawnPayloadSchema,
  stagedSnapshotSchema,
} from './driver-protocol.js';
export {
  AgentArgumentsError,
  AgentErrorCode,
  AgentUnreachableError,
  type ImageFetchFailure,
  imageFetchFailure,
  isTransientBusFailure,
  toDriverError,
} from './errors.js';
export {
  bindHostLiveness,
  type HostLivenessBinding,
  type HostLivenessBindingOptions,
  type LivenessSource,
} from './host-liveness-binding.js';
export {
  IMAGE_TRANSFER_PROTOCOL_REVISION,
  type ImageChunk,
  imageChunkSchema,
  imageRpc,
  MAX_CHUNK_BYTES,
  snapshotRpc,
} from './image-transfer-protocol.js';
export { OperationJournal, type OperationJournalOptions } from './operation-journal.js';
export { RemoteDriver, type RemoteDriverOptions } from './remote-driver.js';
