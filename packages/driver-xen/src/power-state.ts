import type { PowerState } from '@nova-lfs/core';
import { DomainState } from '@nova-lfs/libvirt';

/** Maps a libvirt domain state (libxl driver) onto a power state. */
export function powerStateOfXenDomain(state: number): PowerState {
  switch (state) {
    case DomainState.Running:
    case DomainState.Blocked:
      return 'running';
    case DomainState.Paused:
      return 'paused';
    case DomainState.Shutdown:
    case DomainState.Shutoff:
      return 'shutdown';
    case DomainState.Crashed:
      return 'crashed';
    case DomainState.PmSuspended:
      return 'suspended';
    default:
      return 'nostate';
  }
}
