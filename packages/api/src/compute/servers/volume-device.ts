import type { Instance } from '@nova-lfs/core';
import { conflict } from '../../http/api-fault.js';

/**
 * The guest device an API attach asks the engine for (without `/dev/`): the one requested, or
 * `undefined`, and the driver picks the next free disk and reports it, which the engine records
 * and the answer and later listings show (as Nova's compute reserves the name).
 * @throws ApiFault 409 when the requested device is held by another attached volume (Nova's
 *   DevicePathInUse)
 */
export function deviceForAttach(instance: Instance, requested: string | undefined): string | undefined {
  if (requested === undefined) return undefined;
  if ((instance.volumes ?? []).some((v) => v.device === requested))
    throw conflict(`The supplied device path (/dev/${requested}) is in use.`);
  return requested;
}
