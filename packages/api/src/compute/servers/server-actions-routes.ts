import type { Instance, RequestContext } from '@nova-lfs/core';
import { z } from 'zod';
import { badRequest, conflict } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteAnswer, type RouteSpec, route, validatePart } from '../../http/route.js';
import { atLeast } from '../microversion.js';
import { descriptionText, nameText } from '../resources/resource-common.js';
import { whenAccepted } from './action-acceptance.js';
import { bootableImage } from './image-access.js';
import { beginServers, contextOf, type ServerRequest, serverFor } from './server-access.js';
import type { ServerAttrs } from './server-attrs.js';
import { serverMetadata } from './server-create.js';
import {
  type MoveActionName,
  moveActionRules,
  moveActionSchemas,
  runMoveAction,
} from './server-move-actions.js';
import { serverView } from './server-view.js';

/** A hook the image API provides: records a snapshot's Glance attributes (owner, visibility). */
export type SnapshotRecorder = (snapshot: {
  readonly imageId: string;
  readonly ownerProjectId: string;
  readonly name: string;
  readonly instanceId: string;
}) => Promise<void>;

const nullOrEmpty = z.union([z.null(), z.object({}).strict()]);

const actionSchemas = {
  reboot: z.object({ type: z.string().max(16) }),
  'os-start': nullOrEmpty,
  'os-stop': nullOrEmpty,
  pause: nullOrEmpty,
  unpause: nullOrEmpty,
  suspend: nullOrEmpty,
  resume: nullOrEmpty,
  rebuild: z.object({
    imageRef: z.string().min(1).max(1024),
    name: nameText(255).optional(),
    metadata: serverMetadata.optional(),
    adminPass: z.string().max(255).optional(),
    preserve_ephemeral: z.boolean().optional(),
    description: descriptionText.optional(),
    key_name: z.string().max(255).nullable().optional(),
    user_data: z.string().max(65535).nullable().optional(),
    'OS-DCF:diskConfig': z.enum(['AUTO', 'MANUAL']).optional(),
    accessIPv4: z.string().max(64).optional(),
    accessIPv6: z.string().max(64).optional(),
  }),
  createImage: z.object({ name: nameText(255), metadata: serverMetadata.optional() }),
  evacuate: z
    .object({
      host: z.string().max(255).nullable().optional(),
      adminPass: z.string().max(255).optional(),
      onSharedStorage: z.union([z.boolean(), z.string().max(8)]).optional(),
      force: z.boolean().optional(),
    })
    .nullable(),
  'os-getConsoleOutput': z
    .object({
      length: z
        .union([z.int(), z.string().regex(/^-?\d{1,9}$/, 'must be an integer'), z.null()])
        .transform((x) => (x === null ? undefined : Number(x)))
        .optional(),
    })
    .nullable(),
} as const;

type ActionName = keyof typeof actionSchemas;

/** The rule each action checks (Nova's names). */
const actionRules: Readonly<Record<ActionName, string>> = {
  reboot: 'os_compute_api:servers:reboot',
  'os-start': 'os_compute_api:servers:start',
  'os-stop': 'os_compute_api:servers:stop',
  pause: 'os_compute_api:os-pause-server:pause',
  unpause: 'os_compute_api:os-pause-server:unpause',
  suspend: 'os_compute_api:os-suspend-server:suspend',
  resume: 'os_compute_api:os-suspend-server:resume',
  rebuild: 'os_compute_api:servers:rebuild',
  createImage: 'os_compute_api:servers:create_image',
  'os-getConsoleOutput': 'os_compute_api:os-console-output',
  evacuate: 'os_compute_api:os-evacuate',
};

/** Actions Nova has that this engine does not (yet): 400 naming them, rather than a silent no-op. */
const unsupported = new Set([
  'changePassword',
  'addSecurityGroup',
  'removeSecurityGroup',
  'addFloatingIp',
  'removeFloatingIp',
  'createBackup',
  'restore',
  'forceDelete',
  'trigger_crash_dump',
  'os-resetState',
  'injectNetworkInfo',
  'resetNetwork',
]);

const actionBody = z.record(z.string().max(64), z.unknown());

/**
 * `POST /servers/{id}/action`: reboot (SOFT/HARD), os-start, os-stop, pause, unpause, suspend,
 * resume, rebuild, createImage, os-getConsoleOutput. State changes answer 202 once the engine has
 * accepted them (their task is taken), not when they are done; a refusal in the current state is
 * a 409 in Nova's words.
 */
export function serverActionRoutes(
  services: ApiServices,
  attrs: ServerAttrs,
  recordSnapshot?: SnapshotRecorder,
): RouteSpec[] {
  const base = services.urls.compute;

  async function accept(
    req: ServerRequest,
    instance: Instance,
    requestId: string,
    log: Parameters<typeof whenAccepted>[4],
    run: (context: RequestContext) => Promise<unknown>,
  ): Promise<void> {
    await whenAccepted(services.engine, instance.id, requestId, () => run(contextOf(req, requestId)), log);
  }

  return [
    route({
      method: 'POST',
      url: '/v2.1/servers/:serverId/action',
      service: 'compute',
      summary: 'Act on a server (reboot, start, stop, pause, suspend, rebuild, createImage, console output)',
      rules: [...Object.values(actionRules), ...Object.values(moveActionRules)],
      params: z.object({ serverId: z.string().min(1).max(255) }),
      body: actionBody,
      handler: async ({ request, reply, auth, params, body, requestId }): Promise<RouteAnswer> => {
        const keys = Object.keys(body);
        if (keys.length !== 1) throw badRequest('An action body has exactly one action.', 'body');
        const name = keys[0]!;
        if (unsupported.has(name))
          throw badRequest(`The ${name} action is not supported by this cloud.`, `body.${name}`);
        if (name in moveActionSchemas) {
          const move = name as MoveActionName;
          const moveArgs = validatePart(
            moveActionSchemas[move] as z.ZodType<unknown>,
            body[move],
            `body.${move}`,
          );
          const rule = moveActionRules[move];
          const req = beginServers(services, request, reply, auth, rule, {});
          const instance = await serverFor(services, req.auth, params.serverId, rule);
          return runMoveAction(move, {
            services,
            req,
            instance,
            version: req.version,
            args: moveArgs,
            context: contextOf(req, requestId),
            accept: (run) => accept(req, instance, requestId, request.log, (c) => run(services.engine, c)),
          });
        }
        if (!(name in actionSchemas))
          throw badRequest(`There is no such action: ${name.slice(0, 64)}`, 'body');
        const action = name as ActionName;
        const args = validatePart(
          actionSchemas[action] as z.ZodType<unknown>,
          body[action],
          `body.${action}`,
        );
        const rule = actionRules[action];
        const req = beginServers(services, request, reply, auth, rule, {});
        const instance = await serverFor(services, req.auth, params.serverId, rule);
        const log = request.log;
        const { engine } = services;
        switch (action) {
          case 'reboot': {
            const type = (args as { type: string }).type.toUpperCase();
            if (type !== 'SOFT' && type !== 'HARD')
              throw badRequest(
                `Invalid input for field/attribute type. Value: ${type.slice(0, 16)}. must be SOFT or HARD`,
                'body.reboot.type',
              );
            await accept(req, instance, requestId, log, (c) =>
              engine.reboot(instance.id, type === 'HARD' ? 'hard' : 'soft', c),
            );
            return { status: 202 };
          }
          case 'os-start':
            await accept(req, instance, requestId, log, (c) => engine.powerOn(instance.id, c));
            return { status: 202 };
          case 'os-stop':
            await accept(req, instance, requestId, log, (c) => engine.powerOff(instance.id, c));
            return { status: 202 };
          case 'pause':
            await accept(req, instance, requestId, log, (c) => engine.pause(instance.id, c));
            return { status: 202 };
          case 'unpause':
            await accept(req, instance, requestId, log, (c) => engine.unpause(instance.id, c));
            return { status: 202 };
          case 'suspend':
            await accept(req, instance, requestId, log, (c) => engine.suspend(instance.id, c));
            return { status: 202 };
          case 'resume':
            await accept(req, instance, requestId, log, (c) => engine.resume(instance.id, c));
            return { status: 202 };
          case 'rebuild': {
            const r = args as z.output<(typeof actionSchemas)['rebuild']>;
            if (r.description !== undefined && !atLeast(req.version, 19))
              throw badRequest(
                "Additional properties are not allowed ('description' was unexpected)",
                'body.rebuild.description',
              );
            const image = await bootableImage(services, req.auth, r.imageRef, 'body.rebuild.imageRef');
            await accept(req, instance, requestId, log, (c) =>
              engine.rebuild(
                instance.id,
                {
                  imageId: image.id,
                  ...(r.name !== undefined ? { name: r.name } : {}),
                  ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
                },
                c,
              ),
            );
            if (r.description !== undefined) await attrs.setDescription(instance.id, r.description);
            // the answer shows the server as the rebuild makes it (OSC prints it without a refetch)
            const now = await engine.get(instance.id);
            const shown = {
              ...now,
              imageId: image.id,
              ...(r.name !== undefined ? { name: r.name } : {}),
              ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
            };
            const ctx = await req.view();
            return { status: 202, body: { server: serverView(shown, await attrs.one(instance.id), ctx) } };
          }
          case 'createImage': {
            const { name } = args as { name: string };
            const context = contextOf(req, requestId);
            // the image must be listed by the image API before the 202 (the SDK lists right after)
            const image = await engine.snapshot(instance.id, name, context);
            await recordSnapshot?.({
              imageId: image.id,
              ownerProjectId: instance.projectId,
              name,
              instanceId: instance.id,
            });
            if (atLeast(req.version, 45)) return { status: 202, body: { image_id: image.id } };
            return {
              status: 202,
              headers: { location: `${base.replace(/\/v2(\.1)?$/, '')}/images/${image.id}` },
            };
          }
          case 'evacuate': {
            const e = args as { host?: string | null } | null;
            if (e?.host)
              throw badRequest(
                'Naming the target host of an evacuation is not supported: the scheduler picks it.',
                'body.evacuate.host',
              );
            const hostId = instance.hostId;
            if (!hostId) throw conflict(`Cannot 'evacuate' instance ${instance.id}: it is on no host`);
            const host = await engine.hosts.get(hostId);
            // Nova's answer for a host whose compute service is alive
            if (host?.up !== false)
              throw badRequest(
                `Compute service of ${host?.name ?? hostId} is still in use.`,
                'body.evacuate',
              );
            await accept(req, instance, requestId, log, (c) =>
              engine.evacuate(hostId, { onlyInstanceIds: [instance.id], request: c }),
            );
            return { status: 200, body: atLeast(req.version, 14) ? undefined : { adminPass: '' } };
          }
          case 'os-getConsoleOutput': {
            const length = (args as { length?: number } | null)?.length;
            const lines = length === undefined || length < 0 ? undefined : length;
            const output = await engine.consoleOutput(
              instance.id,
              lines === undefined ? undefined : { lines },
            );
            return { status: 200, body: { output: output ?? '' } };
          }
        }
      },
    }),
  ];
}
