import { type InstanceAction, isInstantAction } from '@nova-lfs/core';
import { z } from 'zod';
import { notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { beginServers, serverFor } from './server-access.js';
import { isoMicros } from './server-view.js';

/** Nova's action names where the engine's differ. */
function novaAction(action: InstanceAction['action']): string {
  if (action === 'reboot_hard') return 'reboot';
  if (action === 'snapshot') return 'createImage';
  return action;
}

function actionView(a: InstanceAction, v: Microversion): Record<string, unknown> {
  const view: Record<string, unknown> = {
    action: novaAction(a.action),
    instance_uuid: a.instanceId,
    request_id: a.requestId,
    user_id: a.userId,
    project_id: a.projectId,
    start_time: isoMicros(a.startedAt),
    message: a.result === 'error' ? 'Error' : null,
  };
  if (atLeast(v, 58)) view.updated_at = isoMicros(a.finishedAt ?? a.startedAt);
  return view;
}

/**
 * The event Nova records for an action: `api_lock` / `api_unlock` for the instant actions (done by
 * the API itself, Nova's `wrap_instance_event(prefix='api')`), `compute_<action>_instance` else.
 */
function eventName(a: InstanceAction): string {
  if (isInstantAction(a.action)) return `api_${a.action}`;
  const action = novaAction(a.action);
  return `compute_${action === 'createImage' ? 'snapshot' : action}_instance`;
}

function eventView(a: InstanceAction, admin: boolean): Record<string, unknown> {
  return {
    event: eventName(a),
    start_time: isoMicros(a.startedAt),
    finish_time: a.finishedAt === null ? null : isoMicros(a.finishedAt),
    result: a.result === 'pending' ? null : a.result === 'success' ? 'Success' : 'Error',
    // no stack traces leave the service; administrators see the fault's message instead
    traceback: admin && a.fault ? a.fault.message : null,
  };
}

/** `/servers/{id}/os-instance-actions`: the action history of a server, newest first, with events. */
export function instanceActionRoutes(services: ApiServices): RouteSpec[] {
  const params = z.object({ serverId: z.string().min(1).max(255) });
  return [
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/os-instance-actions',
      service: 'compute',
      summary: 'List the actions of a server',
      rules: ['os_compute_api:os-instance-actions:list'],
      params,
      query: z.object({ limit: z.string().max(9).optional(), marker: z.string().max(255).optional() }),
      handler: async ({ request, reply, auth, params: p }) => {
        const rule = 'os_compute_api:os-instance-actions:list';
        const req = beginServers(services, request, reply, auth, rule, {});
        const instance = await serverFor(services, req.auth, p.serverId, rule);
        // newest first; actions of the same millisecond (a lock then an unlock) newest first too
        const actions = (await services.engine.listActions(instance.id))
          .reverse()
          .sort((a, b) => b.startedAt - a.startedAt);
        return { status: 200, body: { instanceActions: actions.map((a) => actionView(a, req.version)) } };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/servers/:serverId/os-instance-actions/:requestId',
      service: 'compute',
      summary: 'Show an action of a server (with its events for administrators)',
      rules: ['os_compute_api:os-instance-actions:show', 'os_compute_api:os-instance-actions:events'],
      params: params.extend({ requestId: z.string().min(1).max(255) }),
      handler: async ({ request, reply, auth, params: p }) => {
        const rule = 'os_compute_api:os-instance-actions:show';
        const req = beginServers(services, request, reply, auth, rule, {});
        const instance = await serverFor(services, req.auth, p.serverId, rule);
        const actions = await services.engine.listActions(instance.id);
        const matching = actions
          .filter((a) => a.requestId === p.requestId)
          .sort((a, b) => a.startedAt - b.startedAt);
        const first = matching[0];
        if (!first)
          throw notFound(`Action for request_id ${p.requestId} on instance ${instance.id} not found`);
        const view = actionView(first, req.version);
        const target = { project_id: instance.projectId };
        const seesEvents = services.policy.enforce(
          'os_compute_api:os-instance-actions:events',
          req.auth,
          target,
        );
        if (seesEvents) {
          const admin = services.policy.enforce(
            'os_compute_api:os-instance-actions:events:details',
            req.auth,
            target,
          );
          view.events = matching.map((a) => eventView(a, admin));
        }
        return { status: 200, body: { instanceAction: view } };
      },
    }),
  ];
}
