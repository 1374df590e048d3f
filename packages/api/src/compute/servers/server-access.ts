import { ErrorCode, type Instance, isNovaError, type RequestContext } from '@nova-lfs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type AuthContext, isAdmin } from '../../http/auth-context.js';
import type { Microversion } from '../microversion.js';
import { beginCompute, callerOf } from '../resources/resource-common.js';
import type { ServerViewContext } from './server-view.js';

/** An authorized compute request on servers: the caller, the microversion and the view context. */
export interface ServerRequest {
  readonly auth: AuthContext;
  readonly version: Microversion;
  /** Builds the view context (hosts are read once per request). */
  view(): Promise<ServerViewContext>;
}

/** Starts a servers request: negotiates the microversion, checks the rule against the caller's project. */
export function beginServers(
  services: ApiServices,
  request: FastifyRequest,
  reply: FastifyReply,
  authIn: AuthContext | null,
  rule: string,
  target?: { project_id?: string | null; user_id?: string },
): ServerRequest {
  const version = beginCompute(request, reply);
  const auth = callerOf(authIn);
  services.policy.authorize(rule, auth, { project_id: auth.projectId, user_id: auth.userId, ...target });
  let cached: Promise<ServerViewContext> | undefined;
  return {
    auth,
    version,
    view: () => {
      cached ??= viewContext(services, auth, version);
      return cached;
    },
  };
}

/** The engine's request context of an API request: who asks, as an admin or not. */
export function contextOf(req: ServerRequest, requestId: string): RequestContext {
  return {
    userId: req.auth.userId,
    projectId: req.auth.projectId ?? undefined,
    requestId,
    isAdmin: isAdmin(req.auth),
  };
}

async function viewContext(
  services: ApiServices,
  auth: AuthContext,
  version: Microversion,
): Promise<ServerViewContext> {
  const admin = services.policy.enforce('os_compute_api:os-extended-server-attributes', auth, {
    project_id: auth.projectId,
  });
  const hostNames = new Map<string, string>();
  const hostStatus = new Map<string, string>();
  if (admin) {
    for (const h of await services.engine.hosts.list()) {
      hostNames.set(h.id, h.name);
      hostStatus.set(h.id, !h.up ? 'DOWN' : h.enabled ? 'UP' : 'MAINTENANCE');
    }
  }
  return { version, admin, computeUrl: services.urls.compute, hostNames, hostStatus };
}

/**
 * Loads a server the caller may act on with `rule`: the rule is checked against the server's
 * project, and a server of another project answers 404 exactly like an unknown one (as in Nova),
 * so ids of other projects cannot be probed.
 */
export async function serverFor(
  services: ApiServices,
  auth: AuthContext,
  id: string,
  rule: string,
): Promise<Instance> {
  // built only when thrown: an error captures a stack trace, too dear for every request
  const missing = () => notFound(`Instance ${id} could not be found.`);
  const instance = await services.engine.get(id).catch((e: unknown) => {
    // an id that cannot be an instance id is not found either
    if (isNovaError(e, ErrorCode.NotFound) || isNovaError(e, ErrorCode.Validation)) return undefined;
    throw e;
  });
  if (!instance) throw missing();
  const target = { project_id: instance.projectId, user_id: instance.userId };
  if (!services.policy.enforce(rule, auth, target)) {
    // another project's server is not there for this caller; a reader of the right project gets 403
    if (instance.projectId !== auth.projectId) throw missing();
    services.policy.authorize(rule, auth, target);
  }
  return instance;
}
