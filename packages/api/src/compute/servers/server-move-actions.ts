import type { ComputeEngine, Instance, RequestContext } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault, badRequest } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import type { RouteAnswer } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { FlavorAttrs } from '../resources/flavor-attrs.js';
import { visibleFlavor } from '../resources/flavors-routes.js';
import { resourceDb } from '../resources/resource-common.js';
import { bootableImage, idOfRef } from './image-access.js';
import type { ServerRequest } from './server-access.js';

const nullOrEmpty = z.union([z.null(), z.object({}).strict()]);

/**
 * Bodies of the server actions that move or change a server (issue 15), as Nova's API takes them
 * (unknown extra fields of older microversions are accepted and ignored, as the CLIs send them).
 */
export const moveActionSchemas = {
  lock: z.union([z.null(), z.object({ locked_reason: z.string().max(255).optional() })]),
  unlock: nullOrEmpty,
  resize: z.object({
    flavorRef: z.union([z.string().min(1).max(255), z.int().nonnegative().transform(String)]),
    'OS-DCF:diskConfig': z.enum(['AUTO', 'MANUAL']).optional(),
  }),
  confirmResize: nullOrEmpty,
  revertResize: nullOrEmpty,
  migrate: z.union([z.null(), z.object({ host: z.string().max(255).nullable().optional() })]),
  'os-migrateLive': z.object({
    host: z.string().max(255).nullable(),
    block_migration: z.union([z.boolean(), z.literal('auto'), z.string().max(8)]).optional(),
    disk_over_commit: z.union([z.boolean(), z.string().max(8)]).optional(),
    force: z.boolean().optional(),
  }),
  shelve: nullOrEmpty,
  shelveOffload: nullOrEmpty,
  unshelve: z.union([
    z.null(),
    z.object({
      availability_zone: z.string().max(255).nullable().optional(),
      host: z.string().max(255).optional(),
    }),
  ]),
  rescue: z.union([
    z.null(),
    z.object({
      adminPass: z.string().max(255).optional(),
      rescue_image_ref: z.string().max(1024).optional(),
    }),
  ]),
  unrescue: nullOrEmpty,
} as const;

/** A move action's name. */
export type MoveActionName = keyof typeof moveActionSchemas;

/** The rule each move action checks (Nova's names; admin-only where Nova's defaults are). */
export const moveActionRules: Readonly<Record<MoveActionName, string>> = {
  lock: 'os_compute_api:os-lock-server:lock',
  unlock: 'os_compute_api:os-lock-server:unlock',
  resize: 'os_compute_api:servers:resize',
  confirmResize: 'os_compute_api:servers:confirm_resize',
  revertResize: 'os_compute_api:servers:revert_resize',
  migrate: 'os_compute_api:os-migrate-server:migrate',
  'os-migrateLive': 'os_compute_api:os-migrate-server:migrate_live',
  shelve: 'os_compute_api:os-shelve:shelve',
  shelveOffload: 'os_compute_api:os-shelve:shelve_offload',
  unshelve: 'os_compute_api:os-shelve:unshelve',
  rescue: 'os_compute_api:os-rescue',
  unrescue: 'os_compute_api:os-unrescue',
};

/** What a move action's handler is given. */
export interface MoveActionCall {
  readonly services: ApiServices;
  readonly req: ServerRequest;
  readonly instance: Instance;
  readonly version: Microversion;
  readonly args: unknown;
  /** Runs the engine call and resolves once the engine accepted it (answer 202 then). */
  readonly accept: (
    run: (engine: ComputeEngine, context: RequestContext) => Promise<unknown>,
  ) => Promise<void>;
  /** The caller's request context (with `isAdmin`), for calls answered when done. */
  readonly context: RequestContext;
}

/** A host id from the host name (or id) a request names. @throws ApiFault 400 naming the field */
async function hostIdOf(services: ApiServices, name: string, field: string): Promise<string> {
  for (const h of await services.engine.hosts.list()) if (h.id === name || h.name === name) return h.id;
  throw badRequest(`Compute host ${name.slice(0, 255)} could not be found.`, field);
}

/** Runs one move action; resolves its answer. */
export async function runMoveAction(name: MoveActionName, call: MoveActionCall): Promise<RouteAnswer> {
  const { services, req, instance, args, accept, version } = call;
  const id = instance.id;
  switch (name) {
    case 'lock': {
      const reason = (args as { locked_reason?: string } | null)?.locked_reason;
      if (reason !== undefined && !atLeast(version, 73))
        throw badRequest(
          "Additional properties are not allowed ('locked_reason' was unexpected)",
          'body.lock',
        );
      await services.engine.lock(id, reason !== undefined ? { reason } : {}, call.context);
      return { status: 202 };
    }
    case 'unlock':
      await services.engine.unlock(id, call.context);
      return { status: 202 };
    case 'resize': {
      const ref = (args as { flavorRef: string }).flavorRef;
      const flavor = await visibleFlavor(
        services,
        new FlavorAttrs(resourceDb(services)),
        idOfRef(ref),
        req.auth,
      ).catch((e: unknown) => {
        if (e instanceof ApiFault && e.status === 404)
          throw badRequest(
            `Invalid flavorRef provided: flavor ${ref.slice(0, 255)} could not be found.`,
            'body.resize.flavorRef',
          );
        throw e;
      });
      await accept((engine, c) => engine.resize(id, flavor.flavor.id, c));
      return { status: 202 };
    }
    case 'confirmResize':
      await services.engine.confirmResize(id, call.context);
      return { status: 204 };
    case 'revertResize':
      await accept((engine, c) => engine.revertResize(id, c));
      return { status: 202 };
    case 'migrate': {
      const host = (args as { host?: string | null } | null)?.host;
      if (host && !atLeast(version, 56))
        throw badRequest(
          "Additional properties are not allowed ('host' was unexpected)",
          'body.migrate.host',
        );
      const hostId = host ? await hostIdOf(services, host, 'body.migrate.host') : undefined;
      await accept((engine, c) => engine.migrate(id, hostId ? { host: hostId } : {}, c));
      return { status: 202 };
    }
    case 'os-migrateLive': {
      const host = (args as { host: string | null }).host;
      const hostId = host ? await hostIdOf(services, host, 'body.os-migrateLive.host') : undefined;
      await accept((engine, c) => engine.liveMigrate(id, hostId ? { host: hostId } : {}, c));
      return { status: 202 };
    }
    case 'shelve':
      await accept((engine, c) => engine.shelve(id, c));
      return { status: 202 };
    case 'shelveOffload':
      await accept((engine, c) => engine.shelveOffload(id, c));
      return { status: 202 };
    case 'unshelve': {
      const u = args as { availability_zone?: string | null; host?: string } | null;
      if (u?.host !== undefined || (u?.availability_zone ?? null) !== null)
        throw badRequest(
          'Naming the host or zone of an unshelve is not supported: the scheduler picks it.',
          'body.unshelve',
        );
      await accept((engine, c) => engine.unshelve(id, c));
      return { status: 202 };
    }
    case 'rescue': {
      const r = args as { rescue_image_ref?: string } | null;
      const image = r?.rescue_image_ref
        ? await bootableImage(services, req.auth, r.rescue_image_ref, 'body.rescue.rescue_image_ref')
        : undefined;
      await services.engine.rescue(id, image ? { imageId: image.id } : {}, call.context);
      return { status: 200, body: { adminPass: '' } };
    }
    case 'unrescue':
      await accept((engine, c) => engine.unrescue(id, c));
      return { status: 202 };
  }
}
