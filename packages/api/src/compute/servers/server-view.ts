import { createHash } from 'node:crypto';
import { ErrorCode, type Fault, type Instance } from '@nova-lfs/core';
import { atLeast, type Microversion } from '../microversion.js';
import { addressesOf } from './server-addresses.js';
import { defaultReservationId, type ServerAttrsRow } from './server-attrs.js';
import { powerStateNumber, serverStatus, taskStateName, vmStateName } from './server-status.js';
import { volumesAttachedView } from './volume-attachment-view.js';

/** What a server view needs besides the instance. */
export interface ServerViewContext {
  readonly version: Microversion;
  /** The caller is an administrator (sees hosts, hypervisors, reservation and fault details). */
  readonly admin: boolean;
  /** Public compute URL, e.g. `http://127.0.0.1:8774/v2.1`. */
  readonly computeUrl: string;
  /** Host names by host id (`OS-EXT-SRV-ATTR:hypervisor_hostname`). */
  readonly hostNames: ReadonlyMap<string, string>;
  /** Nova's `host_status` of hosts by id: `UP`, `DOWN` or `MAINTENANCE` (disabled). */
  readonly hostStatus: ReadonlyMap<string, string>;
}

/** Nova's time format for `created` / `updated`: seconds, `Z`. */
export function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** Nova's time format of `launched_at` and instance actions: microseconds, no zone. */
export function isoMicros(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 23)}000`;
}

/** The unversioned root of the compute URL, for `bookmark` links. */
function bookmarkRoot(computeUrl: string): string {
  return computeUrl.replace(/\/v2(\.1)?\/?$/, '');
}

/** `self` and `bookmark` links of a server. */
export function serverLinks(computeUrl: string, id: string): { rel: string; href: string }[] {
  return [
    { rel: 'self', href: `${computeUrl}/servers/${id}` },
    { rel: 'bookmark', href: `${bookmarkRoot(computeUrl)}/servers/${id}` },
  ];
}

/** Nova's `hostId`: an opaque per-project digest of the host, equal for servers on one host. */
export function hostDigest(projectId: string, hostId: string | null): string {
  if (!hostId) return '';
  return createHash('sha224')
    .update(projectId + hostId)
    .digest('hex');
}

/** Nova's `instance-XXXXXXXX` name, stable per instance. */
function instanceName(id: string): string {
  return `instance-${id.replace(/-/g, '').slice(0, 8)}`;
}

const publicFaultMessages: Readonly<Record<string, string>> = {
  [ErrorCode.NoValidHost]: 'No valid host was found. There are not enough hosts available.',
  [ErrorCode.QuotaExceeded]: 'Quota exceeded.',
  [ErrorCode.DeadlineExceeded]: 'The operation did not finish in time.',
};

/**
 * Nova's `fault` of a server in ERROR: administrators see the engine's message (for NoValidHost,
 * which filter refused how many hosts) and the structured details; others see a message that
 * names no host and no internal cause.
 */
export function faultView(fault: Fault, admin: boolean): Record<string, unknown> {
  const created = isoSeconds(fault.at);
  if (admin) {
    const message =
      fault.code === ErrorCode.NoValidHost ? `No valid host was found. ${fault.message}` : fault.message;
    const view: Record<string, unknown> = { code: 500, created, message };
    if (fault.details !== undefined) view.details = JSON.stringify(fault.details);
    return view;
  }
  return {
    code: 500,
    created,
    message: publicFaultMessages[fault.code] ?? 'The server failed; an administrator can see why.',
  };
}

/** The embedded flavor of 2.47+ or the id-and-links flavor before. */
function flavorOf(instance: Instance, ctx: ServerViewContext): Record<string, unknown> {
  const f = instance.flavor;
  if (atLeast(ctx.version, 47)) {
    return {
      vcpus: f.vcpus,
      ram: f.ramMb,
      disk: f.diskGb,
      ephemeral: 0,
      swap: 0,
      original_name: f.name,
      extra_specs: { ...f.extraSpecs },
    };
  }
  return { id: f.id, links: [{ rel: 'bookmark', href: `${bookmarkRoot(ctx.computeUrl)}/flavors/${f.id}` }] };
}

/**
 * A server as Nova shows it at the negotiated microversion: the 2.1 body, then each field the
 * microversions up to 2.73 add (2.3 extended attributes and `delete_on_termination` of
 * `os-extended-volumes:volumes_attached`, 2.9 `locked`, 2.16 `host_status`,
 * 2.19 `description`, 2.26 `tags`, 2.47 embedded flavor, 2.63 certificates, 2.71
 * `server_groups` (with `groups`), 2.73 `locked_reason`). Host and hypervisor fields are for
 * administrators only.
 */
export function serverView(
  instance: Instance,
  attrs: ServerAttrsRow | undefined,
  ctx: ServerViewContext,
  groups?: readonly string[],
): Record<string, unknown> {
  const v = ctx.version;
  const server: Record<string, unknown> = {
    id: instance.id,
    name: instance.name,
    status: serverStatus(instance),
    tenant_id: instance.projectId,
    user_id: instance.userId,
    metadata: { ...instance.metadata },
    hostId: hostDigest(instance.projectId, instance.hostId),
    image: {
      id: instance.imageId,
      links: [{ rel: 'bookmark', href: `${bookmarkRoot(ctx.computeUrl)}/images/${instance.imageId}` }],
    },
    flavor: flavorOf(instance, ctx),
    created: isoSeconds(instance.createdAt),
    updated: isoSeconds(instance.updatedAt),
    addresses: addressesOf(instance),
    accessIPv4: '',
    accessIPv6: '',
    links: serverLinks(ctx.computeUrl, instance.id),
    'OS-DCF:diskConfig': 'MANUAL',
    progress: 0,
    'OS-EXT-AZ:availability_zone': instance.availabilityZone ?? '',
    config_drive: '',
    key_name: attrs?.key_name ?? null,
    'OS-SRV-USG:launched_at': instance.launchedAt === null ? null : isoMicros(instance.launchedAt),
    'OS-SRV-USG:terminated_at': null,
  };
  if (ctx.admin) {
    // as in Nova: `host` is the compute service's host (the engine's host id, which
    // `os-services` lists), `hypervisor_hostname` the hypervisor's node name (`os-hypervisors`)
    const nodeName = instance.hostId ? (ctx.hostNames.get(instance.hostId) ?? instance.hostId) : null;
    server['OS-EXT-SRV-ATTR:host'] = instance.hostId;
    server['OS-EXT-SRV-ATTR:instance_name'] = instanceName(instance.id);
    server['OS-EXT-SRV-ATTR:hypervisor_hostname'] = nodeName;
    if (atLeast(v, 3)) {
      server['OS-EXT-SRV-ATTR:reservation_id'] = attrs?.reservation_id ?? defaultReservationId(instance.id);
      server['OS-EXT-SRV-ATTR:launch_index'] = attrs?.launch_index ?? 0;
      server['OS-EXT-SRV-ATTR:hostname'] = hostnameOf(instance.name);
      server['OS-EXT-SRV-ATTR:kernel_id'] = '';
      server['OS-EXT-SRV-ATTR:ramdisk_id'] = '';
      server['OS-EXT-SRV-ATTR:root_device_name'] = '/dev/sda';
      server['OS-EXT-SRV-ATTR:user_data'] = attrs?.user_data ?? null;
    }
  }
  server['OS-EXT-STS:task_state'] = taskStateName(instance.taskState);
  server['OS-EXT-STS:vm_state'] = vmStateName(instance.vmState);
  server['OS-EXT-STS:power_state'] = powerStateNumber(instance.powerState);
  server['os-extended-volumes:volumes_attached'] = volumesAttachedView(instance, v);
  if (instance.fault && (instance.vmState === 'error' || instance.vmState === 'deleted'))
    server.fault = faultView(instance.fault, ctx.admin);
  if (atLeast(v, 16) && ctx.admin) server.host_status = hostStatus(instance, ctx);
  if (atLeast(v, 9)) server.locked = instance.locked != null;
  if (atLeast(v, 73)) server.locked_reason = instance.locked?.reason ?? null;
  if (atLeast(v, 19)) server.description = attrs?.description ?? null;
  if (atLeast(v, 26)) server.tags = [];
  if (atLeast(v, 63)) server.trusted_image_certificates = null;
  if (atLeast(v, 71) && groups !== undefined) server.server_groups = [...groups];
  return server;
}

/** Nova's `host_status`: UP, DOWN, MAINTENANCE (disabled) or empty without a host. */
function hostStatus(instance: Instance, ctx: ServerViewContext): string {
  if (!instance.hostId) return '';
  return ctx.hostStatus.get(instance.hostId) ?? 'UNKNOWN';
}

/** A DNS label from a display name (Nova's `hostname` sanitisation, reduced). */
function hostnameOf(name: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return label || 'server';
}

/** The short list entry of `GET /servers`. */
export function serverSummary(instance: Instance, computeUrl: string): Record<string, unknown> {
  return { id: instance.id, name: instance.name, links: serverLinks(computeUrl, instance.id) };
}
