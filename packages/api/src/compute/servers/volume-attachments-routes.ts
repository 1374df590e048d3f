import { type AttachedVolume, ErrorCode, type Instance, idSchema, isNovaError } from '@nova-lfs/core';
import { KeyedMutex } from '@nova-lfs/core/ports';
import { z } from 'zod';
import { ApiFault, badRequest, notFound, toApiFault } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast } from '../microversion.js';
import { intQuery } from '../resources/resource-common.js';
import { whenAccepted } from './action-acceptance.js';
import { beginServers, contextOf, serverFor } from './server-access.js';
import { volumeAttachmentView } from './volume-attachment-view.js';
import { deviceForAttach } from './volume-device.js';

/** Nova's `max_limit`: the largest page of a list. */
const maxPage = 1000;

const rules = {
  index: 'os_compute_api:os-volumes-attachments:index',
  show: 'os_compute_api:os-volumes-attachments:show',
  create: 'os_compute_api:os-volumes-attachments:create',
  update: 'os_compute_api:os-volumes-attachments:update',
  delete: 'os_compute_api:os-volumes-attachments:delete',
} as const;

const serverParams = z.object({ serverId: z.string().min(1).max(255) });
const attachmentParams = z.object({
  serverId: z.string().min(1).max(255),
  volumeId: z.string().min(1).max(255),
});

/**
 * A guest disk as the engine names them, with Nova's `/dev/` prefix (Nova's own pattern also takes
 * partitions and other names; the drivers plug whole `vd`/`sd`/`hd`/`xvd` disks only).
 */
const devicePattern = /^\/dev\/(?:vd|sd|hd|xvd)[a-z]{1,2}$/;

/** Nova's `tag` (2.49+): no `,` or `/`, at most 60 characters. */
const tagText = z
  .string()
  .max(60)
  .regex(/^[^,/\p{Cc}]*$/u, 'must not contain "," "/" or control characters');

const attachBody = z.strictObject({
  volumeAttachment: z.strictObject({
    volumeId: idSchema,
    device: z.string().max(255).regex(devicePattern, 'a disk device such as /dev/vdb').nullable().optional(),
    tag: tagText.optional(),
  }),
});

const updateBody = z.strictObject({ volumeAttachment: z.strictObject({ volumeId: idSchema }) });

const listQuery = z.object({ limit: intQuery.optional(), offset: intQuery.optional() });

/** The attachment of `volumeId` on `instance`, or Nova's 404. */
function attachmentOf(instance: Instance, volumeId: string): AttachedVolume {
  const volume = instance.volumes?.find((v) => v.volumeId === volumeId);
  if (!volume) throw notFound(`Instance ${instance.id} is not attached to volume ${volumeId.slice(0, 255)}`);
  return volume;
}

/**
 * An engine refusal of an attach in Nova's terms: an unknown volume is Nova's 404 (`Volume X could
 * not be found.`; also when the engine has no VolumeAdapter, so knows no volume), a volume the engine refused (in use, already attached) a 400 naming the body's
 * field; the rest as every route maps them (409 for the state, the lock and a driver without
 * hot-plug, which Nova answers for what the virt driver cannot do).
 */
function attachFault(e: unknown, volumeId: string): unknown {
  if (isNovaError(e, ErrorCode.NotFound) && (e.details as { kind?: string }).kind === 'volume')
    return notFound(`Volume ${volumeId} could not be found.`);
  // an engine without a VolumeAdapter knows no volume; administrators are told why
  if (isNovaError(e, ErrorCode.Configuration) && (e.details as { setting?: string }).setting === 'volumes')
    return new ApiFault(404, `Volume ${volumeId} could not be found.`, {
      details: 'the engine has no VolumeAdapter configured',
    });
  const fault = toApiFault(e);
  if (isNovaError(e, ErrorCode.Validation) && fault.extra.field !== undefined) {
    const issue = (e.details as { issues?: { path: string; message: string }[] }).issues?.[0];
    // Nova's InvalidVolume words: "Invalid volume: volume X is attached to instance Y"
    const message = issue?.path === 'volumeId' ? `Invalid volume: ${issue.message}` : fault.message;
    return new ApiFault(400, message, { field: `body.volumeAttachment.${fault.extra.field}` });
  }
  return fault;
}

/**
 * `/servers/{id}/os-volume_attachments`: list, show, attach (200 once the volume is attached),
 * detach (202 once the engine accepted it); `PUT` (swap) answers Nova's 501 for what a cloud does
 * not implement. Another project's server is 404 as for every server route.
 */
export function volumeAttachmentRoutes(services: ApiServices): RouteSpec[] {
  // attaches to one server run one after the other in this process, so that each picks its
  // device from the volumes the previous one left (two picking the same free vdX would collide)
  const attaching = new KeyedMutex();
  return [
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/os-volume_attachments',
      service: 'compute',
      summary: 'List the volumes attached to a server',
      rules: [rules.index],
      params: serverParams,
      query: listQuery,
      handler: async ({ request, reply, auth, params, query }) => {
        const req = beginServers(services, request, reply, auth, rules.index, {});
        const instance = await serverFor(services, req.auth, params.serverId, rules.index);
        const offset = query.offset ?? 0;
        const limit = Math.min(query.limit ?? maxPage, maxPage);
        const page = (instance.volumes ?? []).slice(offset, offset + limit);
        return {
          status: 200,
          body: { volumeAttachments: page.map((v) => volumeAttachmentView(instance, v, req.version)) },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/os-volume_attachments/:volumeId',
      service: 'compute',
      summary: 'Show a volume attachment of a server',
      rules: [rules.show],
      params: attachmentParams,
      handler: async ({ request, reply, auth, params }) => {
        const req = beginServers(services, request, reply, auth, rules.show, {});
        const instance = await serverFor(services, req.auth, params.serverId, rules.show);
        const volume = attachmentOf(instance, params.volumeId);
        return {
          status: 200,
          body: { volumeAttachment: volumeAttachmentView(instance, volume, req.version) },
        };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/servers/:serverId/os-volume_attachments',
      service: 'compute',
      summary: 'Attach a volume to a server',
      rules: [rules.create],
      params: serverParams,
      body: attachBody,
      handler: async ({ request, reply, auth, params, body, requestId }) => {
        const req = beginServers(services, request, reply, auth, rules.create, {});
        const asked = body.volumeAttachment;
        if (asked.tag !== undefined && !atLeast(req.version, 49))
          throw badRequest(
            "Additional properties are not allowed ('tag' was unexpected)",
            'body.volumeAttachment.tag',
          );
        const instance = await serverFor(services, req.auth, params.serverId, rules.create);
        if (asked.tag !== undefined)
          throw badRequest(
            'Tagged volume attachment is not supported by this cloud.',
            'body.volumeAttachment.tag',
          );
        const requested = asked.device?.replace(/^\/dev\//, '') ?? undefined;
        // answered once attached, as Nova answers once the device name is reserved: the body
        // names the device the engine recorded, and an unknown or busy volume is refused here
        const attached = await attaching
          .run(instance.id, async () => {
            const device = deviceForAttach(await services.engine.get(instance.id), requested);
            return services.engine.attachVolume(
              instance.id,
              { volumeId: asked.volumeId, ...(device ? { device } : {}) },
              contextOf(req, requestId),
            );
          })
          .catch((e: unknown) => {
            throw attachFault(e, asked.volumeId);
          });
        const volume = attachmentOf(attached, asked.volumeId);
        return {
          status: 200,
          body: { volumeAttachment: volumeAttachmentView(attached, volume, req.version) },
        };
      },
    }),
    route({
      method: 'PUT',
      url: '/v2.1/servers/:serverId/os-volume_attachments/:volumeId',
      service: 'compute',
      summary: 'Swap a volume attachment (501: not implemented)',
      rules: [rules.update],
      params: attachmentParams,
      body: updateBody,
      handler: async ({ request, reply, auth, params }) => {
        const req = beginServers(services, request, reply, auth, rules.update, {});
        const instance = await serverFor(services, req.auth, params.serverId, rules.update);
        attachmentOf(instance, params.volumeId);
        throw new ApiFault(501, 'Swapping the volume of an attachment is not supported by this cloud.');
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/servers/:serverId/os-volume_attachments/:volumeId',
      service: 'compute',
      summary: 'Detach a volume from a server',
      rules: [rules.delete],
      params: attachmentParams,
      handler: async ({ request, reply, auth, params, requestId }) => {
        const req = beginServers(services, request, reply, auth, rules.delete, {});
        const instance = await serverFor(services, req.auth, params.serverId, rules.delete);
        const volume = attachmentOf(instance, params.volumeId);
        await whenAccepted(
          services.engine,
          instance.id,
          requestId,
          () => services.engine.detachVolume(instance.id, volume.volumeId, contextOf(req, requestId)),
          request.log,
        );
        return { status: 202 };
      },
    }),
  ];
}
