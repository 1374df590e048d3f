/** Label holding the instance uuid; every container the driver makes has it. */
export const INSTANCE_LABEL = 'nova-lfs.instance';
/** Label holding the project id. */
export const PROJECT_LABEL = 'nova-lfs.project';
/** Label naming the Nova LFS host the container belongs to (several hosts may share one dockerd). */
export const HOST_LABEL = 'nova-lfs.host';
/** Label holding the display name (any characters; labels are JSON, never a shell). */
export const NAME_LABEL = 'nova-lfs.name';
/** Prefix of labels copied from instance metadata. */
export const METADATA_LABEL_PREFIX = 'nova-lfs.meta.';

/** Container name for an instance: derived from the uuid only, never from user input. */
export function containerName(instanceId: string): string {
  return `nova-${instanceId}`;
}

/** Image reference for image bytes with this sha256 (content-addressed tag). */
export function imageReference(sha256: string): { repo: string; tag: string; ref: string } {
  return { repo: 'nova-lfs/image', tag: sha256, ref: `nova-lfs/image:${sha256}` };
}
