import type { Instance, PowerState, TaskState, VmState } from '@nova-lfs/core';

/** Nova's power state numbers (nova/compute/power_state.py). */
const powerStateNumbers: Readonly<Record<PowerState, number>> = {
  nostate: 0,
  running: 1,
  paused: 3,
  shutdown: 4,
  crashed: 6,
  suspended: 7,
};

/** Nova's `OS-EXT-STS:power_state` of an instance. */
export function powerStateNumber(state: PowerState): number {
  return powerStateNumbers[state];
}

/** Nova's vm_state names, where the engine's differ (`stopped`, `building`). */
const vmStateNames: Readonly<Record<VmState, string>> = {
  building: 'building',
  active: 'active',
  paused: 'paused',
  suspended: 'suspended',
  stopped: 'stopped',
  resized: 'resized',
  rescued: 'rescued',
  shelved: 'shelved',
  shelved_offloaded: 'shelved_offloaded',
  error: 'error',
  deleted: 'deleted',
};

/** Nova's `OS-EXT-STS:vm_state`. */
export function vmStateName(state: VmState): string {
  return vmStateNames[state];
}

/** Nova's task state names (`image_snapshot`, `powering-off`, `rebooting_hard` ...). */
const taskStateNames: Readonly<Record<TaskState, string>> = {
  scheduling: 'scheduling',
  networking: 'networking',
  spawning: 'spawning',
  powering_off: 'powering-off',
  powering_on: 'powering-on',
  rebooting: 'rebooting',
  rebooting_hard: 'rebooting_hard',
  pausing: 'pausing',
  unpausing: 'unpausing',
  suspending: 'suspending',
  resuming: 'resuming',
  rebuilding: 'rebuilding',
  image_snapshot: 'image_snapshot',
  deleting: 'deleting',
  resize_prep: 'resize_prep',
  resize_migrating: 'resize_migrating',
  resize_finish: 'resize_finish',
  resize_reverting: 'resize_reverting',
  resize_confirming: 'resize_confirming',
  migrating: 'migrating',
  shelving: 'shelving',
  shelving_offloading: 'shelving_offloading',
  unshelving: 'unshelving',
  rescuing: 'rescuing',
  unrescuing: 'unrescuing',
  // Nova shows no task state while a volume or an interface is attached or detached
  attaching_volume: '',
  detaching_volume: '',
  attaching_interface: '',
  detaching_interface: '',
};

/** Tasks Nova shows as status RESIZE (a resize or cold migration on its way). */
const resizing: ReadonlySet<TaskState | null> = new Set<TaskState | null>([
  'resize_prep',
  'resize_migrating',
  'resize_finish',
]);

/** Nova's `OS-EXT-STS:task_state`. */
export function taskStateName(state: TaskState | null): string | null {
  return state === null ? null : taskStateNames[state] || null;
}

/**
 * The server `status` Nova derives from the vm and task states
 * (nova/api/openstack/common.py `status_from_state`).
 */
export function serverStatus(instance: Pick<Instance, 'vmState' | 'taskState'>): string {
  const { vmState, taskState } = instance;
  switch (vmState) {
    case 'building':
      return 'BUILD';
    case 'active':
      if (taskState === 'rebooting') return 'REBOOT';
      if (taskState === 'rebooting_hard') return 'HARD_REBOOT';
      if (taskState === 'rebuilding') return 'REBUILD';
      if (taskState === 'migrating') return 'MIGRATING';
      if (resizing.has(taskState)) return 'RESIZE';
      return 'ACTIVE';
    case 'stopped':
      if (resizing.has(taskState)) return 'RESIZE';
      return taskState === 'rebuilding' ? 'REBUILD' : 'SHUTOFF';
    case 'resized':
      return taskState === 'resize_reverting' ? 'REVERT_RESIZE' : 'VERIFY_RESIZE';
    case 'rescued':
      return 'RESCUE';
    case 'shelved':
      return 'SHELVED';
    case 'shelved_offloaded':
      return 'SHELVED_OFFLOADED';
    case 'paused':
      return 'PAUSED';
    case 'suspended':
      return 'SUSPENDED';
    case 'error':
      return taskState === 'rebuilding' ? 'REBUILD' : 'ERROR';
    case 'deleted':
      return 'DELETED';
  }
}

/** Vm states a Nova `status` filter value selects; `undefined` for an unknown status. */
export function vmStatesOfStatus(status: string): readonly VmState[] | undefined {
  switch (status.toUpperCase()) {
    case 'BUILD':
      return ['building'];
    case 'ACTIVE':
    case 'REBOOT':
    case 'HARD_REBOOT':
    case 'REBUILD':
    case 'MIGRATING':
    case 'RESIZE':
      return ['active'];
    case 'VERIFY_RESIZE':
    case 'REVERT_RESIZE':
      return ['resized'];
    case 'RESCUE':
      return ['rescued'];
    case 'SHELVED':
      return ['shelved'];
    case 'SHELVED_OFFLOADED':
      return ['shelved_offloaded'];
    case 'SHUTOFF':
      return ['stopped'];
    case 'PAUSED':
      return ['paused'];
    case 'SUSPENDED':
      return ['suspended'];
    case 'ERROR':
      return ['error'];
    case 'DELETED':
    case 'SOFT_DELETED':
      // deleted records are gone at once (a deleted server answers 404), so nothing matches
      return [];
    default:
      return undefined;
  }
}
