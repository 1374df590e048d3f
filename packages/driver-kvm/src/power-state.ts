import type { PowerState } from '@nova-lfs/core';
import { DomainEventStoppedDetail, DomainEventType, DomainState } from '@nova-lfs/libvirt';

/** Maps a libvirt domain state (`virDomainState`) onto a power state. */
export function powerStateOfDomain(state: number): PowerState {
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

/**
 * The power state a libvirt lifecycle event leaves the domain in, or `undefined` for events that
 * do not settle one: `defined`, `undefined` (the driver looks the domain up), `shutdown` (the
 * guest began or finished shutting down; a `stopped` event follows when QEMU exits) and `stopped`
 * because it migrated away.
 */
export function powerStateOfEvent(event: number, detail: number): PowerState | undefined {
  switch (event) {
    case DomainEventType.Started:
    case DomainEventType.Resumed:
      return 'running';
    case DomainEventType.Suspended:
      return 'paused';
    case DomainEventType.Stopped:
      if (detail === DomainEventStoppedDetail.Saved) return 'suspended';
      // migrated away: the source's copy is undefined next (or kept, shut off, as the poll sees)
      if (detail === DomainEventStoppedDetail.Migrated) return undefined;
      // a crash with on_crash=destroy leaves the domain shut off, as getPowerState reads it
      return 'shutdown';
    case DomainEventType.Crashed:
      return 'crashed';
    case DomainEventType.PmSuspended:
      return 'suspended';
    default:
      return undefined;
  }
}
