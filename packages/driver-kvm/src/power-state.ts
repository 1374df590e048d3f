import type { PowerState } from '@nova-lfs/core';
import { LibvirtDomainState } from './libvirt-binding.js';

/** Maps a libvirt domain state onto a power state. */
export function powerStateOfDomain(state: number): PowerState {
  switch (state) {
    case LibvirtDomainState.Running:
    case LibvirtDomainState.Blocked:
      return 'running';
    case LibvirtDomainState.Paused:
      return 'paused';
    case LibvirtDomainState.Shutdown:
    case LibvirtDomainState.Shutoff:
      return 'shutdown';
    case LibvirtDomainState.Crashed:
      return 'crashed';
    case LibvirtDomainState.PmSuspended:
      return 'suspended';
    default:
      return 'nostate';
  }
}
