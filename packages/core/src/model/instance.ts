import { z } from 'zod';
import { flavorSchema } from './flavor.js';
import { displayNameSchema, idSchema, metadataSchema, uuidSchema } from './names.js';
import { powerStateSchema, taskStateSchema, vmStateSchema } from './states.js';

/** Why an instance is in ERROR (or why its last action failed): Nova's instance fault. */
export const faultSchema = z.object({
  /** Stable error code of the cause, e.g. `NLFS_NO_VALID_HOST`. */
  code: z.string(),
  message: z.string(),
  /** Epoch milliseconds. */
  at: z.number(),
  details: z.record(z.string(), z.unknown()).optional(),
});
/** Why an instance is in ERROR. */
export type Fault = z.output<typeof faultSchema>;

/** Scheduler hints of a create request (Nova's `os:scheduler_hints`). */
export const schedulerHintsSchema = z.object({
  /** Server group id the instances join (affinity policies apply). */
  group: idSchema.optional(),
  /** Place on the same host as these instances. */
  sameHost: z.array(uuidSchema).optional(),
  /** Place on hosts other than those of these instances. */
  differentHost: z.array(uuidSchema).optional(),
  /** Scheduling domain (cell) to place in; default: any cell holding the requested zone. */
  cell: displayNameSchema.optional(),
});
/** Scheduler hints of a create request. */
export type SchedulerHints = z.output<typeof schedulerHintsSchema>;

/** Who locked an instance and why (Nova's `locked`, `locked_by` and `locked_reason`). */
export const instanceLockSchema = z.object({
  /** `admin` when an admin locked it (then only an admin unlocks it), else `owner`. */
  by: z.enum(['admin', 'owner']),
  reason: z.string().max(255).nullable(),
  userId: z.string().nullable(),
  at: z.number(),
});
/** Who locked an instance and why. */
export type InstanceLock = z.output<typeof instanceLockSchema>;

/**
 * A resize or cold migration between its start and its confirm or revert (Nova's migration
 * context): both hosts, both flavors, both claims. The record's `hostId` names the source until
 * the destination's guest exists, then the destination; `flavor` is the old one until then.
 */
export const moveContextSchema = z.object({
  /** The migration record of this move. */
  migrationId: z.string(),
  kind: z.enum(['resize', 'cold']),
  sourceHostId: idSchema,
  /** The source's availability zone (restored by a revert). */
  sourceZone: z.string().nullable(),
  destHostId: idSchema,
  oldFlavor: flavorSchema,
  newFlavor: flavorSchema,
  sourceClaimId: z.string(),
  destClaimId: z.string(),
  /** The guest ran before the move (it runs again after a confirm or revert). */
  powerOn: z.boolean(),
  /** When the destination's guest was finished (the resize confirm window counts from here). */
  finishedAt: z.number().nullable(),
});
/** A resize or cold migration in progress. */
export type MoveContext = z.output<typeof moveContextSchema>;

/** What shelve kept of an instance (Nova's `shelved_image_id`, `shelved_at`). */
export const shelveInfoSchema = z.object({
  /** The snapshot in the image service an unshelve boots from. */
  imageId: idSchema,
  at: z.number(),
  /** The instance's own image before the shelve (restored after unshelve). */
  originalImageId: idSchema,
});
/** What shelve kept of an instance. */
export type ShelveInfo = z.output<typeof shelveInfoSchema>;

/**
 * A volume attached to an instance: what the VolumeAdapter connected and the driver plugged in
 * (core's `BlockDevice`), kept so that a detach hands the driver the same device.
 */
export const attachedVolumeSchema = z.object({
  volumeId: idSchema,
  /** Guest device asked for (e.g. `vdb`); absent when the driver chose one. */
  device: z.string().optional(),
  /** The adapter's connection info for the driver (path, format, ...). */
  connection: z.record(z.string(), z.string()),
  /**
   * Set from the moment the adapter connected it until its attach ends (past a deadline that ended
   * the task, until the driver's late answer is undone): a volume still marked after its engine
   * died is unplugged and disconnected by the reconciliation.
   */
  attaching: z.literal(true).optional(),
});
/** A volume attached to an instance. */
export type AttachedVolume = z.output<typeof attachedVolumeSchema>;

/**
 * A network port bound to an instance: what the NetworkAdapter allocated and the driver plugged
 * in (core's `PortBinding`), kept so that a detach unplugs the same interface.
 */
export const attachedPortSchema = z.object({
  portId: idSchema,
  networkId: idSchema,
  /** The guest interface's MAC address (`fa:16:3e:..`), when the adapter chose one. */
  macAddress: z.string().optional(),
  ipAddresses: z.array(z.string()).optional(),
  /** The adapter's binding details for the driver (tap or bridge name, ...). */
  binding: z.record(z.string(), z.string()).optional(),
  /**
   * Set from the moment the adapter bound it until its attach ends (past a deadline that ended the
   * task, until the driver's late answer is undone): a port still marked after its engine died is
   * unplugged and released by the reconciliation.
   */
  attaching: z.literal(true).optional(),
});
/** A network port bound to an instance. */
export type AttachedPort = z.output<typeof attachedPortSchema>;

/**
 * A virtual machine or container. Immutable snapshot: every change makes a new object with
 * `revision` incremented (stores compare-and-set on it). Timestamps are epoch milliseconds.
 */
export const instanceSchema = z.object({
  id: uuidSchema,
  name: displayNameSchema,
  projectId: idSchema,
  userId: idSchema,
  /** Copy of the flavor at create time (later flavor changes do not affect the instance). */
  flavor: flavorSchema,
  imageId: idSchema,
  /** Host it runs on, `null` before scheduling or after a failed build. */
  hostId: idSchema.nullable(),
  availabilityZone: z.string().nullable(),
  vmState: vmStateSchema,
  taskState: taskStateSchema.nullable(),
  powerState: powerStateSchema,
  fault: faultSchema.nullable(),
  metadata: metadataSchema,
  hints: schedulerHintsSchema,
  createdAt: z.number(),
  updatedAt: z.number(),
  launchedAt: z.number().nullable(),
  /** Set while the instance is locked (`compute.lock`); absent on records from before locks. */
  locked: instanceLockSchema.nullable().optional(),
  /** Set while a resize or cold migration waits for its end. */
  move: moveContextSchema.nullable().optional(),
  /** Set while shelved or shelved-offloaded. */
  shelved: shelveInfoSchema.nullable().optional(),
  /** Volumes attached at create time or since (`compute.attachVolume`); absent when none. */
  volumes: z.array(attachedVolumeSchema).optional(),
  /** Ports bound at create time or since (`compute.attachInterface`); absent when none. */
  ports: z.array(attachedPortSchema).optional(),
  /** Incremented by every update; the compare-and-set token. */
  revision: z.int().nonnegative(),
});
/** A virtual machine or container. */
export type Instance = z.output<typeof instanceSchema>;

/** Fields an update may change. */
export type InstancePatch = Partial<
  Pick<
    Instance,
    | 'name'
    | 'hostId'
    | 'availabilityZone'
    | 'vmState'
    | 'taskState'
    | 'powerState'
    | 'fault'
    | 'metadata'
    | 'launchedAt'
    | 'imageId'
    | 'flavor'
    | 'locked'
    | 'move'
    | 'shelved'
    | 'volumes'
    | 'ports'
  >
>;
