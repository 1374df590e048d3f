import { z } from 'zod';

/**
 * Nova's three-part state model. `vmState` is the stable state the user sees, `taskState` the
 * operation in progress (or `null`), `powerState` what the hypervisor reports.
 */

/** Stable, user-visible state of an instance. */
export const vmStates = [
  'building',
  'active',
  'paused',
  'suspended',
  'stopped',
  /** Resized or cold-migrated, waiting for `confirmResize` or `revertResize` (Nova's RESIZED, status VERIFY_RESIZE). */
  'resized',
  /** Rescue image booted with the original disk attached (Nova's RESCUED). */
  'rescued',
  /** Snapshot taken, guest powered off but still on its host (Nova's SHELVED). */
  'shelved',
  /** Shelved and gone from its host: no guest, no claim, the record kept (Nova's SHELVED_OFFLOADED). */
  'shelved_offloaded',
  'error',
  'deleted',
] as const;
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
  /** Resize / cold migration: destination scheduled and claimed, being prepared. */
  'resize_prep',
  /** Resize / cold migration: the source powers off and hands its disks over. */
  'resize_migrating',
  /** Resize / cold migration: the destination re-creates the guest. */
  'resize_finish',
  /** Revert of a resize: the destination's guest goes, the source's comes back. */
  'resize_reverting',
  /** Confirm of a resize: the source's copy goes. */
  'resize_confirming',
  /** Live migration running (vm state stays `active`). */
  'migrating',
  /** Shelve: snapshot and power off. */
  'shelving',
  /** Shelve offload: the guest destroyed and its claim released. */
  'shelving_offloading',
  /** Unshelve: scheduled again and booted from the shelve snapshot. */
  'unshelving',
  'rescuing',
  'unrescuing',
  /** A volume being hot-plugged (Nova records it as the `attach_volume` action). */
  'attaching_volume',
  /** A volume being unplugged. */
  'detaching_volume',
  /** A network interface being hot-plugged (Nova's `attach_interface` action). */
  'attaching_interface',
  /** A network interface being unplugged. */
  'detaching_interface',
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
