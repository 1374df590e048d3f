import type { Instance } from '@nova-lfs/core';
import { conflict } from '../../http/api-fault.js';

/**
 * The guest device an API attach asks the engine for (without `/dev/`), as Nova reserves a device
 * name before it answers: the one requested, or the first `vdb`..`vdz` no attached volume of the
 * instance holds (`vda` is the root disk). It is then what the engine records and what the answer
 * and later listings show.
 *
 * `undefined` (let the driver pick; the attachment then shows no device) when none was requested
 * and an attached volume's device is not recorded (attached by a create or an engine caller
 * without naming one): only the driver knows which disk that one took, so naming one here could
 * collide with it.
 * @throws ApiFault 409 when the requested device is held by another attached volume (Nova's
 *   DevicePathInUse)
 */
export function deviceForAttach(instance: Instance, requested: string | undefined): string | undefined {
  const attached = instance.volumes ?? [];
  const taken = new Set(attached.flatMap((v) => (v.device ? [v.device] : [])));
  if (requested !== undefined) {
    if (taken.has(requested)) throw conflict(`The supplied device path (/dev/${requested}) is in use.`);
    return requested;
  }
  if (attached.some((v) => !v.device)) return undefined;
  for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
    const name = `vd${String.fromCharCode(c)}`;
    if (!taken.has(name)) return name;
  }
  // every vdX taken: the driver refuses the attach naming the device
  return undefined;
}
