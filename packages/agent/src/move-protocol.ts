import { defineBusEvent, defineRpcMethod } from '@nova-lfs/bus-nats';
import { flavorSchema, imageSchema, instanceSchema } from '@nova-lfs/core';
import { z } from 'zod';
import {
  blockDeviceSchema,
  imageArtifactSchema,
  linkedArtifactsSchema,
  portBindingSchema,
} from './driver-protocol.js';

/**
 * The wire contract of the ports that move and change running instances (core's
 * `driver-moves.ts`: cold migration and resize, rescue, live migration; and volume hot-plug)
 * between {@link RemoteDriver} and {@link AgentService}. Served from
 * driver protocol revision 2 on: a control plane uses these methods only with agents that report
 * `protocolRevision >= 2` (an older agent never served them, whatever its capabilities say).
 */
export const MOVE_PROTOCOL_REVISION = 2 as const;

/** The driver protocol revision from which agents serve interface hot-plug (`attachInterface`, `detachInterface`). */
export const INTERFACE_PROTOCOL_REVISION = 3 as const;

const done = z.object({});
const stringRecord = z
  .record(z.string().max(255), z.string().max(4096))
  .refine((r) => Object.keys(r).length <= 64, 'at most 64 entries');
const instancePayload = z.object({ instance: instanceSchema });
const ms = z.number().int().nonnegative().max(86_400_000);
const bytes = z.number().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** `MigrationTarget` on the wire. */
export const migrationTargetSchema = z.object({
  hostId: z.string().min(1).max(255),
  driverKind: z.string().min(1).max(64),
  sameHost: z.boolean(),
  params: stringRecord,
});

/** `MigratedDisks` on the wire. */
export const migratedDisksSchema = z.object({ params: stringRecord });

/** `LiveMigrationProgress` on the wire. */
export const liveMigrationProgressSchema = z.object({
  phase: z.enum(['precopy', 'postcopy']),
  elapsedMs: ms,
  dataTotalBytes: bytes.optional(),
  dataProcessedBytes: bytes.optional(),
  dataRemainingBytes: bytes.optional(),
  dirtyRateBytesPerSecond: bytes.optional(),
  downtimeMs: ms.optional(),
});

/** `LiveMigrationResult` on the wire. */
export const liveMigrationResultSchema = z.object({
  totalMs: ms,
  downtimeMs: ms.optional(),
  postCopy: z.boolean(),
});

/** `ForceCompleteMode` on the wire. */
export const forceCompleteModeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('postcopy') }),
  z.object({ kind: z.literal('downtime'), downtimeMs: ms }),
]);

/** Payload of `driver.finishMigration`: `FinishMigrationRequest` without its signal and image service. */
export const finishMigrationPayloadSchema = z.object({
  instance: instanceSchema,
  flavor: flavorSchema,
  image: imageSchema,
  /** Present when the agent's driver needs image bytes (as for spawn). */
  artifact: imageArtifactSchema.optional(),
  linked: linkedArtifactsSchema.optional(),
  disks: migratedDisksSchema,
  powerOn: z.boolean(),
  volumes: z.array(blockDeviceSchema).max(64),
});
/** Payload of `driver.finishMigration`. */
export type FinishMigrationPayload = z.output<typeof finishMigrationPayloadSchema>;

/** Payload of `driver.rescue`: `RescueRequest` without its signal and image service. */
export const rescuePayloadSchema = z.object({
  instance: instanceSchema,
  flavor: flavorSchema,
  rescueImage: imageSchema,
  artifact: imageArtifactSchema.optional(),
  linked: linkedArtifactsSchema.optional(),
});
/** Payload of `driver.rescue`. */
export type RescuePayload = z.output<typeof rescuePayloadSchema>;

/** Payload of `driver.liveMigrate`: `LiveMigrationOptions` without its signal and progress callback. */
export const liveMigratePayloadSchema = z.object({
  instance: instanceSchema,
  target: migrationTargetSchema,
  maxDowntimeMs: ms.optional(),
  bandwidthMiBps: z.number().positive().max(1_000_000).optional(),
  allowPostCopy: z.boolean().optional(),
});
/** Payload of `driver.liveMigrate`. */
export type LiveMigratePayload = z.output<typeof liveMigratePayloadSchema>;

/** The move and change operations an agent serves (revision 2), by RPC method. */
export const moveRpc = {
  // cold migration and resize
  prepareColdMigrationTarget: defineRpcMethod(
    'driver.prepareColdMigrationTarget',
    instancePayload.extend({ flavor: flavorSchema }),
    migrationTargetSchema,
  ),
  migrateDisksAndPowerOff: defineRpcMethod(
    'driver.migrateDisksAndPowerOff',
    instancePayload.extend({ target: migrationTargetSchema }),
    migratedDisksSchema,
  ),
  finishMigration: defineRpcMethod('driver.finishMigration', finishMigrationPayloadSchema, done),
  confirmMigration: defineRpcMethod('driver.confirmMigration', instancePayload, done),
  revertMigrationOnDestination: defineRpcMethod('driver.revertMigrationOnDestination', instancePayload, done),
  finishRevertMigration: defineRpcMethod(
    'driver.finishRevertMigration',
    instancePayload.extend({ powerOn: z.boolean() }),
    done,
  ),
  // rescue
  rescue: defineRpcMethod('driver.rescue', rescuePayloadSchema, done),
  unrescue: defineRpcMethod('driver.unrescue', instancePayload, done),
  // live migration
  prepareLiveMigrationTarget: defineRpcMethod(
    'driver.prepareLiveMigrationTarget',
    instancePayload,
    migrationTargetSchema,
  ),
  /** Read-only pre-check on the source; refuses with the driver's reason. */
  checkLiveMigration: defineRpcMethod(
    'driver.checkLiveMigration',
    instancePayload.extend({ target: migrationTargetSchema }),
    done,
  ),
  /** Runs until the guest is on the destination; progress arrives as {@link migrationProgressEvent}. */
  liveMigrate: defineRpcMethod('driver.liveMigrate', liveMigratePayloadSchema, liveMigrationResultSchema),
  /** Served beside the running `liveMigrate` (not queued behind it on the instance). */
  abortLiveMigration: defineRpcMethod('driver.abortLiveMigration', instancePayload, done),
  /** Served beside the running `liveMigrate` (not queued behind it on the instance). */
  forceCompleteLiveMigration: defineRpcMethod(
    'driver.forceCompleteLiveMigration',
    instancePayload.extend({ mode: forceCompleteModeSchema }),
    done,
  ),
  rollbackLiveMigrationTarget: defineRpcMethod('driver.rollbackLiveMigrationTarget', instancePayload, done),
  // volumes while running
  /** Answers the guest device the volume got, when the driver says (older agents answer `{}`). */
  attachVolume: defineRpcMethod(
    'driver.attachVolume',
    instancePayload.extend({ device: blockDeviceSchema }),
    z.object({ device: z.string().max(64).optional() }),
  ),
  detachVolume: defineRpcMethod(
    'driver.detachVolume',
    instancePayload.extend({ device: blockDeviceSchema }),
    done,
  ),
  // interfaces while running (from INTERFACE_PROTOCOL_REVISION on)
  attachInterface: defineRpcMethod(
    'driver.attachInterface',
    instancePayload.extend({ port: portBindingSchema }),
    done,
  ),
  detachInterface: defineRpcMethod(
    'driver.detachInterface',
    instancePayload.extend({ port: portBindingSchema }),
    done,
  ),
} as const;

/**
 * Progress of a live migration the agent runs, for the call with `operationId` (the control plane
 * matches it to its own call), at most every {@link PROGRESS_EVENT_EVERY_MS} and on a phase change.
 */
export const migrationProgressEvent = defineBusEvent(
  'instance.migrationProgress',
  z.object({
    instanceId: z.string().min(1).max(255),
    operationId: z.string().min(1).max(128),
    progress: liveMigrationProgressSchema,
  }),
);

/** The agent sends a migration's progress at most this often (ms), plus every phase change. */
export const PROGRESS_EVENT_EVERY_MS = 100;
