import type { PowerState } from '@nova-lfs/core';

/** The parts of a container inspection the mapping reads. */
export interface ContainerStateView {
  readonly Status?: string;
  readonly Running?: boolean;
  readonly Paused?: boolean;
  readonly Restarting?: boolean;
  readonly OOMKilled?: boolean;
  readonly Dead?: boolean;
}

/** Maps Docker's container state onto a power state. */
export function powerStateOf(state: ContainerStateView | undefined): PowerState {
  if (!state) return 'nostate';
  if (state.Paused) return 'paused';
  if (state.Running || state.Restarting) return 'running';
  if (state.Dead || state.OOMKilled) return 'crashed';
  return 'shutdown';
}

/** Maps a Docker event action onto the power state it suggests (undefined: not a power change). */
export function powerStateOfAction(action: string): PowerState | undefined {
  switch (action) {
    case 'start':
    case 'restart':
    case 'unpause':
      return 'running';
    case 'pause':
      return 'paused';
    case 'die':
    case 'stop':
    case 'kill':
      return 'shutdown';
    case 'oom':
      return 'crashed';
    case 'destroy':
      return 'nostate';
    default:
      return undefined;
  }
}
