import { PassThrough } from 'node:stream';
import type { InstanceEvent, LoggedEvent } from '@nova-lfs/core';
import { z } from 'zod';
import { badRequest } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { type RouteSpec, route } from '../../http/route.js';
import { callerOf } from '../resources/resource-common.js';

/** How often an idle stream sends a comment line, so proxies and clients see it alive. */
const heartbeatMs = 15_000;

const hostFields = new Set(['hostId', 'fromHostId', 'toHostId', 'alternateHostIds']);

/**
 * An event as a caller who is not an administrator may see it: no host ids (hosts are an
 * operator's business, as in Nova's server views) and no fault details.
 */
export function publicEvent(event: InstanceEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) {
    if (hostFields.has(k)) continue;
    if (k === 'fault' && v && typeof v === 'object') {
      const { details: _hidden, ...rest } = v as Record<string, unknown>;
      out[k] = rest;
    } else if (k === 'instance' && v && typeof v === 'object') {
      const { hostId: _h, fault, ...rest } = v as Record<string, unknown>;
      out[k] =
        fault && typeof fault === 'object'
          ? { ...rest, fault: { ...(fault as object), details: undefined } }
          : rest;
    } else if (k === 'action' && v && typeof v === 'object') {
      const a = v as Record<string, unknown>;
      out[k] =
        a.fault && typeof a.fault === 'object'
          ? { ...a, fault: { ...(a.fault as object), details: undefined } }
          : a;
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** One server-sent event frame. */
function frame(logged: LoggedEvent, admin: boolean): string {
  const data = admin ? logged.event : publicEvent(logged.event);
  return `id: ${logged.seq}\nevent: ${logged.event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * `GET /v2.1/events`: the engine's durable event log as server-sent events, live, resumable
 * from a cursor (`?since=SEQ` or the `Last-Event-ID` header a reconnecting EventSource sends),
 * for the caller's project only (administrators: every project, or `?project_id=`).
 */
export function eventRoutes(services: ApiServices): RouteSpec[] {
  return [
    route({
      method: 'GET',
      url: '/v2.1/events',
      service: 'compute',
      summary: 'Follow instance events (server-sent events, resumable)',
      rules: ['nova_lfs:events:stream'],
      query: z.object({
        since: z
          .string()
          .regex(/^\d{1,15}$/, 'must be a non-negative integer')
          .optional(),
        project_id: z.string().max(255).optional(),
        server_id: z.string().max(255).optional(),
      }),
      handler: async ({ request, reply, auth: authIn, query }) => {
        const auth = callerOf(authIn);
        services.policy.authorize('nova_lfs:events:stream', auth, { project_id: auth.projectId });
        const admin = services.policy.enforce('context_is_admin', auth);
        const lastId = request.headers['last-event-id'];
        const cursorText = query.since ?? (typeof lastId === 'string' ? lastId : undefined);
        if (cursorText !== undefined && !/^\d{1,15}$/.test(cursorText))
          throw badRequest('Last-Event-ID must be a non-negative integer', 'header.last-event-id');
        const projectId = admin ? query.project_id : (auth.projectId ?? undefined);
        if (!admin && projectId === undefined)
          throw badRequest('A project-scoped token is required', 'token');
        const out = new PassThrough();
        out.write(': nova-lfs events\n\n');
        // the frames of one turn of the event loop (a group commit lands many at once) leave in
        // one write: one chunk and one socket write instead of one per frame
        let pending = '';
        const flush = () => {
          if (pending === '') return;
          const text = pending;
          pending = '';
          if (!out.writableEnded) out.write(text);
        };
        const send = (text: string) => {
          if (pending === '') setImmediate(flush);
          pending += text;
        };
        const end = () => {
          flush();
          out.end();
        };
        const subscription = services.engine
          .events({
            ...(cursorText !== undefined ? { since: Number(cursorText) } : {}),
            ...(projectId !== undefined ? { projectId } : {}),
            ...(query.server_id !== undefined ? { instanceId: query.server_id } : {}),
          })
          .subscribe({
            next: (logged) => send(frame(logged, admin)),
            error: end,
            complete: end,
          });
        const heartbeat = setInterval(() => send(': keep-alive\n\n'), heartbeatMs);
        heartbeat.unref();
        const stop = () => {
          clearInterval(heartbeat);
          subscription.unsubscribe();
          end();
        };
        // the response closes when the client goes away (the request's own 'close' fires once its body is read)
        reply.raw.once('close', stop);
        out.once('close', stop);
        return {
          status: 200,
          headers: {
            'content-type': 'text/event-stream',
            'cache-control': 'no-cache',
            connection: 'keep-alive',
          },
          body: out,
        };
      },
    }),
  ];
}
