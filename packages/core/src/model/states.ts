import { z } from 'zod';

/**
 * Nova's three-part state model. `vmState` is the stable state the user sees, `taskState` the
 * operation in progress (or `null`), `powerState` what the hypervisor reports.
 */

/** Stable, user-visible state of an instance. */
export const vmStates = ['building', 'active', 'paused', 'suspended', 'stopped', 'error', 'deleted'] as const;
/** Stable, user-visible state of an instance. */
export type VmState = (typeof vmStates)[number];
/** zod schema of {@link VmState}. */
export const vmStateSchema = z.enum(vmStates);

/** Operation in progress on an instance. At most one at a time. */
export const taskStates = [
  'scheduling',
  'networking',
  'spawning',
  'powering_off',
  'powering_on',
  'rebooting',
  'rebooting_hard',
  'pausing',
  'unpausing',
  'suspending',
  'resuming',
  'rebuilding',
  'image_snapshot',
  'deleting',
] as const;
/** Operation in progress on an instance. At most one at a time. */
export type TaskState = (typeof taskStates)[number];
/** zod schema of {@link TaskState}. */
export const taskStateSchema = z.enum(taskStates);

/** Power state as reported by the driver. */
export const powerStates = ['nostate', 'running', 'paused', 'shutdown', 'crashed', 'suspended'] as const;
/** Power state as reported by the driver. */
export type PowerState = (typeof powerStates)[number];
/** zod schema of {@link PowerState}. */
export const powerStateSchema = z.enum(powerStates);
