import { DriverError } from '../errors.js';
import type { PortBinding } from '../ports/network.js';
import type { BlockDevice } from '../ports/volume.js';

/**
 * What a FAKE guest created with these volumes and ports has plugged in (see `FakeGuest`): each
 * volume on its asked device, the others on the next free `vdX` after the root disk; each port's
 * interface by its MAC. Empty sets are left out.
 */
export function pluggedDevices(
  volumes: readonly BlockDevice[],
  ports: readonly PortBinding[],
): { volumes?: Record<string, string>; interfaces?: Record<string, string> } {
  return {
    ...(volumes.length ? { volumes: devicesOf(volumes) } : {}),
    ...(ports.length
      ? { interfaces: Object.fromEntries(ports.map((p) => [p.portId, p.macAddress ?? ''])) }
      : {}),
  };
}

/** The devices a spawn plugs in: each as asked, the others on the next free `vdX` after the root disk. */
function devicesOf(devices: readonly BlockDevice[]): Record<string, string> {
  const taken = new Set(devices.flatMap((d) => (d.device ? [d.device] : [])));
  const out: Record<string, string> = {};
  for (const d of devices) {
    const name = d.device ?? nextFreeDisk(taken);
    taken.add(name);
    out[d.volumeId] = name;
  }
  return out;
}

/** The first `vdb`..`vdz` not in `taken` (`vda` is the root disk). */
export function nextFreeDisk(taken: ReadonlySet<string>): string {
  for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
    const name = `vd${String.fromCharCode(c)}`;
    if (!taken.has(name)) return name;
  }
  throw new DriverError(
    { driver: 'fake', operation: 'attachVolume', retryable: false },
    'no free disk device',
  );
}
