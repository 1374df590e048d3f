import { InvalidStateError } from '../errors.js';
import type { TaskActionName } from './action.js';
import type { Instance } from './instance.js';
import { type PowerState, type TaskState, type VmState, vmStates } from './states.js';

/** The driver capability an action needs (a key of `DriverCapabilities`). */
export type RequiredCapability =
  | 'powerControl'
  | 'reboot'
  | 'pause'
  | 'suspend'
  | 'rebuild'
  | 'snapshot'
  | 'liveMigration'
  | 'coldMigration'
  | 'rescue'
  | 'volumeAttach'
  | 'interfaceAttach'
  | undefined;

/** The power state a stable vm state shows. */
function powerOfState(state: VmState): PowerState {
  if (state === 'paused') return 'paused';
  if (state === 'suspended') return 'suspended';
  if (state === 'stopped') return 'shutdown';
  return 'running';
}

/** One row of the transition table. */
export interface Transition {
  /** States from which the action is accepted (and only with no task in progress). */
  readonly from: readonly VmState[];
  /** Task state while the action runs. */
  readonly task: TaskState;
  /** Stable state after success; a function when it depends on where the action started. */
  readonly to: VmState | ((from: VmState) => VmState);
  /** Power state expected after success. */
  readonly power: PowerState | ((from: VmState) => PowerState);
  /** Driver capability required; the action is refused up front without it. */
  readonly capability: RequiredCapability;
}

/** Every state but `deleted`. */
const ALL_LIVE: readonly VmState[] = vmStates.filter((s) => s !== 'deleted');

const keepsPower = (from: VmState): PowerState => (from === 'stopped' ? 'shutdown' : 'running');

/** A device plugged in or out while the instance runs, is paused or is stopped: the state is kept. */
function hotPlug(task: TaskState, capability: RequiredCapability): Transition {
  return { from: ['active', 'paused', 'stopped'], task, to: (from) => from, power: powerOfState, capability };
}

/**
 * The single transition table of the engine, after Nova's `check_instance_state` rules. It has a
 * row per task action only: instant actions (lock, unlock) take no task and change no state. An action
 * whose row does not list the instance's `vmState`, or that arrives while another task runs, is
 * refused with {@link InvalidStateError}. `delete` is the exception: it is accepted in every live
 * state and overrides any task in progress (a stuck task must never block a delete).
 */
export const transitions: Readonly<Record<TaskActionName, Transition>> = Object.freeze({
  create: { from: [], task: 'scheduling', to: 'active', power: 'running', capability: undefined },
  delete: { from: ALL_LIVE, task: 'deleting', to: 'deleted', power: 'nostate', capability: undefined },
  start: {
    from: ['stopped'],
    task: 'powering_on',
    to: 'active',
    power: 'running',
    capability: 'powerControl',
  },
  stop: {
    from: ['active', 'paused', 'suspended', 'error'],
    task: 'powering_off',
    to: 'stopped',
    power: 'shutdown',
    capability: 'powerControl',
  },
  reboot: { from: ['active'], task: 'rebooting', to: 'active', power: 'running', capability: 'reboot' },
  reboot_hard: {
    from: ['active', 'stopped', 'paused', 'suspended', 'error'],
    task: 'rebooting_hard',
    to: 'active',
    power: 'running',
    capability: 'reboot',
  },
  pause: { from: ['active'], task: 'pausing', to: 'paused', power: 'paused', capability: 'pause' },
  unpause: { from: ['paused'], task: 'unpausing', to: 'active', power: 'running', capability: 'pause' },
  suspend: {
    from: ['active'],
    task: 'suspending',
    to: 'suspended',
    power: 'suspended',
    capability: 'suspend',
  },
  resume: { from: ['suspended'], task: 'resuming', to: 'active', power: 'running', capability: 'suspend' },
  rebuild: {
    from: ['active', 'stopped', 'error'],
    task: 'rebuilding',
    to: (from) => (from === 'stopped' ? 'stopped' : 'active'),
    power: keepsPower,
    capability: 'rebuild',
  },
  snapshot: {
    from: ['active', 'stopped', 'paused', 'suspended'],
    task: 'image_snapshot',
    to: (from) => from,
    power: powerOfState,
    capability: 'snapshot',
  },
  /**
   * Rebuilt from its image on another host because its host is down (Nova's evacuate, accepted
   * from ACTIVE, STOPPED and ERROR with task `rebuilding`, as Nova's API sets it). The power state
   * is kept: a stopped instance is powered off again on its new host.
   */
  evacuate: {
    from: ['active', 'stopped', 'error'],
    task: 'rebuilding',
    to: (from) => (from === 'stopped' ? 'stopped' : 'active'),
    power: (from) => (from === 'stopped' ? 'shutdown' : 'running'),
    capability: undefined,
  },
  /** Resize to another flavor (Nova's resize: ACTIVE or SHUTOFF, then VERIFY_RESIZE). */
  resize: {
    from: ['active', 'stopped'],
    task: 'resize_prep',
    to: 'resized',
    power: keepsPower,
    capability: 'coldMigration',
  },
  /** Cold migration: a resize to the same flavor on another host. */
  migrate: {
    from: ['active', 'stopped'],
    task: 'resize_prep',
    to: 'resized',
    power: keepsPower,
    capability: 'coldMigration',
  },
  /**
   * Ends a resize: the source's copy goes; active or stopped again as it was before. Also from
   * ERROR when a resize's end failed (the move is still recorded: it may be tried again).
   */
  confirmResize: {
    from: ['resized', 'error'],
    task: 'resize_confirming',
    to: 'active',
    power: 'running',
    capability: undefined,
  },
  /** Undoes a resize: the destination's guest goes, the source's copy comes back with the old flavor. */
  revertResize: {
    from: ['resized', 'error'],
    task: 'resize_reverting',
    to: 'active',
    power: 'running',
    capability: undefined,
  },
  /** Live migration: the guest keeps running (Nova accepts ACTIVE and PAUSED). */
  'live-migration': {
    from: ['active', 'paused'],
    task: 'migrating',
    to: (from) => from,
    power: powerOfState,
    capability: 'liveMigration',
  },
  /** Shelve: snapshot, power off (Nova's shelve from ACTIVE, SHUTOFF, PAUSED, SUSPENDED). */
  shelve: {
    from: ['active', 'stopped', 'paused', 'suspended'],
    task: 'shelving',
    to: 'shelved',
    power: 'shutdown',
    capability: 'snapshot',
  },
  /** Shelve offload: the guest and its claim go, the record stays. */
  shelveOffload: {
    from: ['shelved'],
    task: 'shelving_offloading',
    to: 'shelved_offloaded',
    power: 'nostate',
    capability: undefined,
  },
  /** Unshelve: scheduled again (when offloaded), booted from the shelve snapshot. */
  unshelve: {
    from: ['shelved', 'shelved_offloaded'],
    task: 'unshelving',
    to: 'active',
    power: 'running',
    capability: undefined,
  },
  rescue: {
    from: ['active', 'stopped', 'error'],
    task: 'rescuing',
    to: 'rescued',
    power: 'running',
    capability: 'rescue',
  },
  unrescue: { from: ['rescued'], task: 'unrescuing', to: 'active', power: 'running', capability: 'rescue' },
  /** Hot-plug of a volume (Nova's attach from ACTIVE, PAUSED and SHUTOFF); the state is kept. */
  attach_volume: hotPlug('attaching_volume', 'volumeAttach'),
  /** Unplug of an attached volume; the state is kept. */
  detach_volume: hotPlug('detaching_volume', 'volumeAttach'),
  /** Hot-plug of a network interface (Nova's attach from ACTIVE, PAUSED and SHUTOFF); the state is kept. */
  attach_interface: hotPlug('attaching_interface', 'interfaceAttach'),
  /** Unplug of an attached network interface; the state is kept. */
  detach_interface: hotPlug('detaching_interface', 'interfaceAttach'),
});

/** Actions an instance with a resize or cold migration waiting for its end (a `move`) accepts. */
const MOVE_ENDS: readonly TaskActionName[] = ['confirmResize', 'revertResize', 'delete'];

/** The parts of an instance that decide which actions it accepts. */
type ActionGate = Pick<Instance, 'vmState' | 'taskState'> &
  Partial<Pick<Instance, 'move' | 'volumes' | 'ports'>>;

/**
 * Whether `action` is accepted for an instance in these states. An instance whose resize or cold
 * migration has not ended (`move` set, also in ERROR after a failed end) accepts only its confirm,
 * its revert and delete. One with a device still marked `attaching` (an attach whose deadline
 * passed while its driver was still plugging the device in: the engine undoes it once the driver
 * answers) accepts only delete, as its task still ran: a move would carry the device elsewhere.
 */
export function isActionAllowed(action: TaskActionName, state: ActionGate): boolean {
  const row = transitions[action];
  if (!row.from.includes(state.vmState)) return false;
  if (state.move && !MOVE_ENDS.includes(action)) return false;
  if (action === 'delete') return true;
  return state.taskState === null && !hasAttachingDevice(state);
}

/** Whether the instance records a volume or port still marked `attaching`. */
export function hasAttachingDevice(instance: Partial<Pick<Instance, 'volumes' | 'ports'>>): boolean {
  return (
    (instance.volumes?.some((v) => v.attaching) ?? false) ||
    (instance.ports?.some((p) => p.attaching) ?? false)
  );
}

/** Throws {@link InvalidStateError} (with the current states) unless `action` is accepted. */
export function assertActionAllowed(
  action: TaskActionName,
  instance: Pick<Instance, 'id' | 'powerState'> & ActionGate,
): void {
  if (!isActionAllowed(action, instance)) {
    throw new InvalidStateError({
      instanceId: instance.id,
      action,
      vmState: instance.vmState,
      taskState: instance.taskState,
      powerState: instance.powerState,
    });
  }
}

/** The stable state and power state an action leads to from `from`. */
export function outcomeOf(
  action: TaskActionName,
  from: VmState,
): { vmState: VmState; powerState: PowerState } {
  const row = transitions[action];
  return {
    vmState: typeof row.to === 'function' ? row.to(from) : row.to,
    powerState: typeof row.power === 'function' ? row.power(from) : row.power,
  };
}

/** The stable state matching a power state, used when reconciling with what a driver reports. */
export function vmStateForPower(power: PowerState): VmState | undefined {
  switch (power) {
    case 'running':
      return 'active';
    case 'paused':
      return 'paused';
    case 'suspended':
      return 'suspended';
    case 'shutdown':
    case 'crashed':
      return 'stopped';
    default:
      return undefined;
  }
}
