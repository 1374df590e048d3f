import { DriverError } from '@nova-lfs/core';

/** Prefix of every container this driver creates: `nova-<instance uuid>`. */
export const CONTAINER_PREFIX = 'nova-';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONTAINER = /^nova-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Environment keys the driver records in each container's config (`lxc.environment`). */
export const TAG = {
  /** Instance uuid. */
  instance: 'NOVA_LFS_INSTANCE',
  /** Project id, percent-encoded. */
  project: 'NOVA_LFS_PROJECT',
  /** Host id of the driver that owns the container, percent-encoded. */
  host: 'NOVA_LFS_HOST',
} as const;

/**
 * The LXC container name of an instance: `nova-<uuid>`, from the uuid only (never the user's
 * name, which could hold `/`, `..` or line breaks). The uuid is lower-cased.
 * @throws DriverError (`retryable: false, reschedule: false`) for an id that is not a uuid.
 */
export function containerName(instanceId: string): string {
  const id = instanceId.toLowerCase();
  if (!UUID.test(id))
    throw new DriverError(
      { driver: 'lxc', operation: 'name', instanceId, retryable: false, reschedule: false },
      'instance id is not a uuid: LXC container names are made from instance uuids only',
    );
  return `${CONTAINER_PREFIX}${id}`;
}

/** The instance uuid of a container name this driver made, or undefined for any other name. */
export function instanceIdOf(container: string): string | undefined {
  return CONTAINER.exec(container)?.[1];
}

/**
 * A host name for `lxc.uts.name` from the instance's display name, as Nova sanitizes one
 * (`sanitize_hostname`): lower-case letters, digits and `-`, at most 63 characters, no leading or
 * trailing `-`; `nova-<first 8 of the uuid>` when nothing is left. Never holds `=`, space or a
 * line break.
 */
export function hostnameOf(displayName: string, instanceId: string): string {
  const name = displayName
    .toLowerCase()
    .replace(/[ _.]/g, '-')
    .replace(/[^a-z0-9-]/g, '')
    .replace(/-+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  return name || `nova-${instanceId.toLowerCase().slice(0, 8)}`;
}
