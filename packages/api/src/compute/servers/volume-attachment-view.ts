import type { AttachedVolume, Instance } from '@nova-lfs/core';
import { atLeast, type Microversion } from '../microversion.js';

/** Nova's device path of an attached volume (`/dev/vdb`); `null` when the record names no device. */
export function devicePath(volume: AttachedVolume): string | null {
  return volume.device ? `/dev/${volume.device}` : null;
}

/**
 * One volume attachment as Nova shows it (`os-volume_attachments`) at the negotiated
 * microversion: the volume id is also the attachment's `id`, the device carries the `/dev/` prefix
 * (`null` when the engine recorded none: a volume a create or an engine caller attached without
 * naming one, whose device only the driver knows), and from 2.70 `tag` is `null` (this cloud
 * keeps no device tags). The fields of 2.79 and 2.89 are not served: the API's newest
 * microversion is 2.73.
 */
export function volumeAttachmentView(
  instance: Instance,
  volume: AttachedVolume,
  version: Microversion,
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: volume.volumeId,
    volumeId: volume.volumeId,
    serverId: instance.id,
    device: devicePath(volume),
  };
  if (atLeast(version, 70)) view.tag = null;
  return view;
}

/**
 * The server body's `os-extended-volumes:volumes_attached`: each attached volume's id, and from
 * 2.3 `delete_on_termination` (always `false`: a delete disconnects volumes, never deletes them).
 */
export function volumesAttachedView(instance: Instance, version: Microversion): Record<string, unknown>[] {
  return (instance.volumes ?? []).map((v) =>
    atLeast(version, 3) ? { id: v.volumeId, delete_on_termination: false } : { id: v.volumeId },
  );
}
