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
  >
>;
