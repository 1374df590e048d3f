import type { PowerState } from '@nova-lfs/core';

/**
 * Power state of an LXC state name (`lxc-info -s`, `lxc-ls -F STATE`): RUNNING and THAWED are
 * `running`; FROZEN and FREEZING `paused`; STOPPED and STOPPING `shutdown`; STARTING counts as
 * `running` (init is being started); ABORTING (a start that failed) is `crashed`.
 */
export function powerStateOf(lxcState: string): PowerState {
  switch (lxcState.trim().toUpperCase()) {
    case 'RUNNING':
    case 'THAWED':
    case 'STARTING':
      return 'running';
    case 'FROZEN':
    case 'FREEZING':
      return 'paused';
    case 'STOPPED':
    case 'STOPPING':
      return 'shutdown';
    case 'ABORTING':
      return 'crashed';
    default:
      return 'nostate';
  }
}
