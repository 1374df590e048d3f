import { defineBusEvent, defineRpcMethod } from '@nova-lfs/bus-nats';
import {
  type DriverCapabilities,
  flavorSchema,
  imageSchema,
  instanceSchema,
  inventorySchema,
  powerStateSchema,
  sha256Schema,
} from '@nova-lfs/core';
import { noCapabilities } from '@nova-lfs/core/ports';
import { z } from 'zod';
import { imageServedBySchema } from './image-transfer-protocol.js';

/**
 * The wire contract of driver calls between the control plane ({@link RemoteDriver}) and a
 * compute agent ({@link AgentService}): one RPC method per driver operation and the host events,
 * each with the zod schemas both sides check. Both sides import this one file.
 *
 * Versioning: the envelope's version is bus-nats's (`CURRENT_VERSION`, N and N-1 accepted).
 * This file's own revision is {@link DRIVER_PROTOCOL_REVISION}, reported by `driver.describe`;
 * a change that an older peer cannot read needs a new method name (e.g. `driver.spawn.v2`)
 * served next to the old one, never a changed schema under an existing name.
 */
export const DRIVER_PROTOCOL_REVISION = 4 as const;
// Revisions: 1, the guest lifecycle (`driverRpc`); 2, the move ports (`moveRpc` in
// move-protocol.ts: cold migration and resize, rescue, live migration, volume hot-plug); 3,
// interface hot-plug (`moveRpc.attachInterface`); 4, image bytes over the bus
// (image-transfer-protocol.ts: `artifact.servedBy`, `image.read`, `driver.snapshotRead`). A control plane uses a method only with agents
// whose reported revision serves it.

const empty = z.object({});
const done = z.object({});
/** A guest id as drivers report it (an instance uuid; orphans may carry any tag). */
const guestIdSchema = z.string().min(1).max(255);
const stringRecord = z.record(z.string().max(255), z.string().max(4096));

/**
 * Every capability flag of `DriverCapabilities`. An unknown flag is refused; a missing one reads as
 * off, so that an agent built before a flag existed (e.g. `coldMigration`, `rescue`) keeps working
 * with a newer control plane, which then simply does not use that capability on its host.
 */
export const capabilitiesSchema = z.strictObject(
  Object.fromEntries(Object.keys(noCapabilities).map((k) => [k, z.boolean().default(false)])) as Record<
    keyof typeof noCapabilities,
    z.ZodDefault<z.ZodBoolean>
  >,
);

/**
 * The capability flags of the previous message version's agents and control planes (v1), pinned:
 * a v1 control plane reads a capabilities record of exactly these flags (its schema is strict),
 * so an agent answers a v1 caller with only these ({@link capabilitiesForVersion}). Do not change
 * this list; flags added since (`coldMigration`, `rescue`) are not in it.
 */
export const capabilityFlagsV1 = Object.freeze([
  'powerControl',
  'reboot',
  'pause',
  'suspend',
  'rebuild',
  'snapshot',
  'volumeAttach',
  'interfaceAttach',
  'liveMigration',
  'consoleOutput',
] as const);

/** A capabilities record as a caller of message version `version` reads it (v1: the pinned flags only). */
export function capabilitiesForVersion(
  capabilities: DriverCapabilities,
  version: number,
): Partial<DriverCapabilities> {
  if (version !== 1) return { ...capabilities };
  return Object.fromEntries(capabilityFlagsV1.map((k) => [k, capabilities[k]]));
}

/** `HostReport` on the wire. */
export const hostReportSchema = z.object({
  hostname: z.string().min(1).max(255),
  hypervisorType: z.string().min(1).max(64),
  architecture: z.string().min(1).max(64),
  inventory: z.record(z.string().min(1).max(255), inventorySchema),
  traits: z.array(z.string().min(1).max(255)).max(1000),
});

/** `PortBinding` on the wire. */
export const portBindingSchema = z.object({
  portId: z.string().min(1).max(255),
  networkId: z.string().min(1).max(255),
  macAddress: z.string().max(64).optional(),
  ipAddresses: z.array(z.string().max(64)).max(64).optional(),
  binding: stringRecord.optional(),
});

/** `BlockDevice` on the wire. */
export const blockDeviceSchema = z.object({
  volumeId: z.string().min(1).max(255),
  device: z.string().max(64).optional(),
  connection: stringRecord,
});

/** `DriverInstance` on the wire. */
export const driverInstanceSchema = z.object({
  instanceId: guestIdSchema,
  powerState: powerStateSchema,
  projectId: z.string().max(255).optional(),
});

/**
 * An image's verified artifact on the control plane that sent the call: its sha256 (which the
 * agent verifies what it fetched against) and, from revision 4, who serves its bytes over the
 * bus (`servedBy`, that control-plane process's bus id) and its size. `path` is where the control
 * plane keeps it: an agent of revision 3 or older reads it there (it shares the control plane's
 * machine); a current agent only when told it shares that directory (`--shared-image-dir`).
 * Fields an older agent does not know are dropped by its schema.
 */
export const imageArtifactSchema = z.object({
  path: z.string().min(1).max(4096),
  sha256: sha256Schema,
  /** The control-plane process serving the bytes (`image.read`); absent from older control planes. */
  servedBy: imageServedBySchema.optional(),
  /** The artifact's size in bytes (a fetch yielding more is refused). */
  sizeBytes: z.int().nonnegative().optional(),
});
/** An image's artifact as a call carries it. */
export type ImageArtifact = z.output<typeof imageArtifactSchema>;

/**
 * The artifact of an image the call's image names (its `kernelImageId` or `ramdiskImageId`:
 * a direct-boot kernel and initrd), with the image's record. Added in revision 2; an older
 * agent ignores the field.
 */
export const linkedArtifactSchema = imageArtifactSchema.extend({ image: imageSchema });
/** A linked image's artifact. */
export type LinkedArtifact = z.output<typeof linkedArtifactSchema>;
/** The image artifacts a call sends (absent when the agent's driver needs no bytes). */
export interface CallArtifacts {
  readonly artifact?: ImageArtifact;
  readonly linked?: LinkedArtifact[];
}

/** The linked artifacts of one call (a kernel and an initrd at most, with room to spare). */
export const linkedArtifactsSchema = z.array(linkedArtifactSchema).max(4);

const instancePayload = z.object({ instance: instanceSchema });

/** Payload of spawn and rebuild: `SpawnRequest` without its signal and image service. */
export const spawnPayloadSchema = z.object({
  instance: instanceSchema,
  flavor: flavorSchema,
  image: imageSchema,
  /** Present when the agent's driver needs image bytes (see `describe.needsImageBytes`). */
  artifact: imageArtifactSchema.optional(),
  /** The kernel and initrd the image names, when the agent's driver needs bytes. */
  linked: linkedArtifactsSchema.optional(),
  ports: z.array(portBindingSchema).max(64),
  volumes: z.array(blockDeviceSchema).max(64),
});
/** Payload of `driver.spawn` / `driver.rebuild`. */
export type SpawnPayload = z.output<typeof spawnPayloadSchema>;

/** What an agent says about itself (`driver.describe`). */
export const agentDescriptionSchema = z.object({
  hostId: z.string().min(1).max(64),
  /** The agent's driver kind (`fake`, `docker`, ...). */
  kind: z.string().min(1).max(64),
  capabilities: capabilitiesSchema,
  /** Whether spawn and rebuild need the image's bytes (an `artifact`); false: ids suffice. */
  needsImageBytes: z.boolean(),
  /** Changes on every start of the agent process. */
  bootId: z.string().min(1).max(64),
  startedAt: z.number().int().nonnegative(),
  /** The agent's {@link DRIVER_PROTOCOL_REVISION}. */
  protocolRevision: z.number().int().positive(),
});
/** What an agent says about itself. */
export type AgentDescription = z.output<typeof agentDescriptionSchema>;

/**
 * `driver.describe` as the agent serves it: the same message, but a flag left out stays out of
 * the reply (the control plane's schema reads it as off) instead of being filled in, so that a
 * v1 caller gets exactly the flags of {@link capabilityFlagsV1}.
 */
export const describeServed = defineRpcMethod(
  'driver.describe',
  z.object({}),
  agentDescriptionSchema.extend({
    capabilities: z.strictObject(
      Object.fromEntries(Object.keys(noCapabilities).map((k) => [k, z.boolean().optional()])) as Record<
        keyof typeof noCapabilities,
        z.ZodOptional<z.ZodBoolean>
      >,
    ),
  }),
);

/**
 * A snapshot the agent staged for the control plane to import: from revision 4 read over the bus
 * (`driver.snapshotRead`); `path` is for control planes that read it on the agent's machine.
 */
export const stagedSnapshotSchema = z.object({
  image: imageSchema,
  path: z.string().min(1).max(4096),
});

/** The driver operations an agent serves, by RPC method. */
export const driverRpc = {
  /** The agent's driver kind, capabilities and boot id. Read-only. */
  describe: defineRpcMethod('driver.describe', empty, agentDescriptionSchema),
  /** `getHostReport()`: inventory, traits, hypervisor. Read-only. */
  hostReport: defineRpcMethod('driver.hostReport', empty, hostReportSchema),
  /** `listInstances()`: the guests the agent's driver reports. Read-only. */
  listInstances: defineRpcMethod(
    'driver.listInstances',
    empty,
    z.object({ instances: z.array(driverInstanceSchema).max(100_000) }),
  ),
  /** `getPowerState(instance)`. Read-only. */
  powerState: defineRpcMethod(
    'driver.powerState',
    instancePayload,
    z.object({ powerState: powerStateSchema }),
  ),
  spawn: defineRpcMethod('driver.spawn', spawnPayloadSchema, done),
  rebuild: defineRpcMethod('driver.rebuild', spawnPayloadSchema, done),
  /** Idempotent; aborts whatever else runs on the instance first. */
  destroy: defineRpcMethod('driver.destroy', instancePayload, done),
  powerOff: defineRpcMethod(
    'driver.powerOff',
    instancePayload.extend({ timeoutMs: z.int().nonnegative().max(86_400_000).optional() }),
    done,
  ),
  powerOn: defineRpcMethod('driver.powerOn', instancePayload, done),
  reboot: defineRpcMethod('driver.reboot', instancePayload.extend({ kind: z.enum(['soft', 'hard']) }), done),
  pause: defineRpcMethod('driver.pause', instancePayload, done),
  unpause: defineRpcMethod('driver.unpause', instancePayload, done),
  suspend: defineRpcMethod('driver.suspend', instancePayload, done),
  resume: defineRpcMethod('driver.resume', instancePayload, done),
  /** Captures the guest into a file the control plane imports; `snapshotRelease` removes it. */
  snapshot: defineRpcMethod(
    'driver.snapshot',
    instancePayload.extend({ name: z.string().min(1).max(255) }),
    stagedSnapshotSchema,
  ),
  /** Forgets a staged snapshot once the control plane imported it. Idempotent. */
  snapshotRelease: defineRpcMethod(
    'driver.snapshotRelease',
    z.object({ imageId: z.string().min(1).max(255) }),
    done,
  ),
  consoleOutput: defineRpcMethod(
    'driver.consoleOutput',
    instancePayload.extend({ lines: z.int().positive().max(100_000).optional() }),
    z.object({ text: z.string() }),
  ),
  /**
   * Aborts the running call with `operationId` (the engine's signal aborted: deadline or delete).
   * `cancelled` is false when nothing with that id runs.
   */
  cancel: defineRpcMethod(
    'driver.cancel',
    z.object({ operationId: z.string().min(1).max(128), reason: z.enum(['deadline', 'aborted']) }),
    z.object({ cancelled: z.boolean() }),
  ),
} as const;

/** Power-state changes the agent's driver observed on its own (crashes, kills), as `events$` emits them. */
export const powerStateEvent = defineBusEvent(
  'instance.power',
  z.object({ instanceId: guestIdSchema, powerState: powerStateSchema, at: z.number().int().nonnegative() }),
);

/**
 * The agent (re)started: a new `bootId`. Calls sent to its previous run will never be answered;
 * a {@link RemoteDriver} resends them with their operation ids.
 */
export const agentStartedEvent = defineBusEvent(
  'agent.started',
  z.object({
    bootId: z.string().min(1).max(64),
    startedAt: z.number().int().nonnegative(),
    kind: z.string().min(1).max(64),
    /** Guests the driver reported at start (re-attached). */
    recovered: z.int().nonnegative(),
  }),
);
