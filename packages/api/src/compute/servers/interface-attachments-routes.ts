import {
  type AttachedPort,
  ErrorCode,
  type FieldIssue,
  type Instance,
  isNovaError,
  type RequestContext,
} from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault, badRequest, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import { isAdmin } from '../../http/auth-context.js';
import { type RouteAnswer, type RouteSpec, route } from '../../http/route.js';
import { policyDefaults } from '../../policy/policy-engine.js';
import { atLeast, type Microversion } from '../microversion.js';
import { beginServers, type ServerRequest, serverFor } from './server-access.js';

const member = 'rule:project_member_or_admin';
const reader = 'rule:project_reader_or_admin';

/** Nova's default rules (new defaults) for `os-interface`. */
export const interfaceAttachmentPolicies = policyDefaults({
  'os_compute_api:os-attach-interfaces:list': [reader, 'List the port interfaces attached to a server.'],
  'os_compute_api:os-attach-interfaces:show': [reader, 'Show a port interface attached to a server.'],
  'os_compute_api:os-attach-interfaces:create': [member, 'Attach a port interface to a server.'],
  'os_compute_api:os-attach-interfaces:delete': [member, 'Detach a port interface from a server.'],
});

const rule = (op: 'list' | 'show' | 'create' | 'delete') => `os_compute_api:os-attach-interfaces:${op}`;

/** A network or port id as the engine takes it (letters, digits, `._:@-`). */
const idText = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/,
    'must be letters, digits and ._:@- starting with a letter or digit',
  );

const createBody = z
  .strictObject({
    interfaceAttachment: z
      .strictObject({
        net_id: idText.optional(),
        port_id: idText.optional(),
        fixed_ips: z
          .array(z.strictObject({ ip_address: z.string().min(1).max(64) }))
          .min(1)
          .max(1)
          .optional(),
        tag: z.string().max(60).optional(),
      })
      .optional(),
  })
  .nullable()
  .optional();

const serverParams = z.object({ serverId: z.string().min(1).max(255) });
const portParams = serverParams.extend({ portId: z.string().min(1).max(255) });

/** The request context the engine records: who asks, as an admin or not, under which request id. */
function contextOf(req: ServerRequest, requestId: string): RequestContext {
  return {
    userId: req.auth.userId,
    projectId: req.auth.projectId ?? undefined,
    requestId,
    isAdmin: isAdmin(req.auth),
  };
}

/**
 * Nova's interface attachment view of a recorded port. One subnet per network, so `subnet_id` is
 * the network's id; the port is `ACTIVE` while recorded (bound and plugged in); `tag` is null from
 * 2.70 (tags are not stored).
 */
export function interfaceAttachmentView(port: AttachedPort, version: Microversion): Record<string, unknown> {
  const view: Record<string, unknown> = {
    net_id: port.networkId,
    port_id: port.portId,
    mac_addr: port.macAddress ?? null,
    port_state: 'ACTIVE',
    fixed_ips: (port.ipAddresses ?? []).map((ip) => ({ ip_address: ip, subnet_id: port.networkId })),
  };
  if (atLeast(version, 70)) view.tag = null;
  return view;
}

/** Engine field names as the request body names them. */
const bodyField: Readonly<Record<string, string>> = {
  networkId: 'body.interfaceAttachment.net_id',
  portId: 'body.interfaceAttachment.port_id',
};

/** The answer Nova gives for an engine refusal of an attach (attach_interfaces.py `create`). */
function attachFault(e: unknown, serverId: string): unknown {
  if (!isNovaError(e)) return e;
  switch (e.code) {
    case ErrorCode.Validation: {
      const issue = (e.details as { issues?: readonly FieldIssue[] }).issues?.[0];
      if (!issue) return e;
      if (issue.path === 'portId' && (issue.rule === 'in-use' || issue.rule === 'attached'))
        return conflict(`Port is still in use: ${issue.message}`); // Nova's PortInUse
      if (issue.path === 'networkId' && issue.rule === 'exhausted')
        return badRequest(`Zero fixed IPs available: ${issue.message}`, bodyField.networkId); // NoMoreFixedIps
      if (issue.path === 'networkId' && issue.rule === 'required')
        return badRequest(
          'No network was named and there is not exactly one network: give net_id or port_id.', // NetworkAmbiguous
          bodyField.networkId,
        );
      const field = bodyField[issue.path] ?? `body.interfaceAttachment.${issue.path}`;
      return badRequest(`Invalid input for field/attribute ${field}: ${issue.message}`, field);
    }
    case ErrorCode.NotFound: {
      const d = e.details as { kind?: string; id?: string };
      if (d.kind === 'network') return notFound(`Network ${d.id} could not be found.`);
      if (d.kind === 'port') return notFound(`Port id ${d.id} could not be found.`);
      return e;
    }
    case ErrorCode.CapabilityUnsupported:
      // Nova's AttachInterfaceNotSupported
      return badRequest(`Attaching interfaces is not supported for instance ${serverId}.`);
    case ErrorCode.Configuration:
      if ((e.details as { setting?: string }).setting === 'network')
        return badRequest('This cloud has no network service: interfaces cannot be attached.');
      return e;
    case ErrorCode.Driver:
      // Nova's InterfaceAttachFailed; the driver's own words stay in the server's fault and actions
      return new ApiFault(500, `Failed to attach network adapter device to ${serverId}`);
    default:
      return e;
  }
}

/**
 * Runs `run` to its end; resolves whether the engine accepted it (its action recorded under
 * `requestId`) and the error it ended with, so that a failure after acceptance answers 202 as Nova
 * does (the outcome is on the server: its fault and action) while a refusal before answers 4xx.
 */
async function runToEnd(
  services: ApiServices,
  instanceId: string,
  requestId: string,
  run: () => Promise<unknown>,
): Promise<{ accepted: boolean; error?: unknown }> {
  let accepted = false;
  const subscription = services.engine.watch(instanceId).subscribe({
    next: (event) => {
      if (event.type === 'instance.action' && event.action.requestId === requestId) accepted = true;
    },
    error: () => undefined,
  });
  try {
    await run();
    return { accepted: true };
  } catch (error) {
    return { accepted, error };
  } finally {
    subscription.unsubscribe();
  }
}

/**
 * Nova's `os-interface` (attach_interfaces.py) over `compute.attachInterface` /
 * `detachInterface`: list and show the ports recorded on a server, attach a new port on a network
 * or an existing port (200 once plugged in, with the attachment), detach one (202). Requesting a
 * fixed IP and tagging are refused with 400 (the engine takes neither). Another project's server
 * is 404 for non-admins, as everywhere.
 */
export function interfaceAttachmentRoutes(services: ApiServices): RouteSpec[] {
  services.policy.register(interfaceAttachmentPolicies);
  const { engine } = services;
  const base = '/v2.1/servers/:serverId/os-interface';

  const attachedPort = (instance: Instance, portId: string): AttachedPort => {
    const port = (instance.ports ?? []).find((p) => p.portId === portId);
    if (!port) throw notFound(`Instance ${instance.id} does not have a port with id ${portId}`);
    return port;
  };

  return [
    route({
      method: 'GET',
      url: base,
      service: 'compute',
      summary: 'List the port interfaces of a server',
      rules: [rule('list')],
      params: serverParams,
      handler: async ({ request, reply, auth, params }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, rule('list'), {});
        const instance = await serverFor(services, req.auth, params.serverId, rule('list'));
        return {
          status: 200,
          body: {
            interfaceAttachments: (instance.ports ?? []).map((p) => interfaceAttachmentView(p, req.version)),
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: `${base}/:portId`,
      service: 'compute',
      summary: 'Show a port interface of a server',
      rules: [rule('show')],
      params: portParams,
      handler: async ({ request, reply, auth, params }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, rule('show'), {});
        const instance = await serverFor(services, req.auth, params.serverId, rule('show'));
        const port = attachedPort(instance, params.portId);
        return { status: 200, body: { interfaceAttachment: interfaceAttachmentView(port, req.version) } };
      },
    }),
    route({
      method: 'POST',
      url: base,
      service: 'compute',
      summary: 'Attach a port interface (a new port on a network, or an existing port) to a server',
      rules: [rule('create')],
      params: serverParams,
      body: createBody,
      handler: async ({ request, reply, auth, params, body, requestId }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, rule('create'), {});
        const instance = await serverFor(services, req.auth, params.serverId, rule('create'));
        const a = body?.interfaceAttachment ?? {};
        if (a.net_id !== undefined && a.port_id !== undefined)
          throw badRequest('Must not input both network_id and port_id', 'body.interfaceAttachment');
        if (a.fixed_ips !== undefined && a.net_id === undefined)
          throw badRequest(
            'Must input network_id when request IP address',
            'body.interfaceAttachment.fixed_ips',
          );
        if (a.fixed_ips !== undefined)
          throw badRequest(
            'Requesting a fixed IP on attach is not supported by this cloud: the network assigns the next free address.',
            'body.interfaceAttachment.fixed_ips',
          );
        if (a.tag !== undefined) {
          if (!atLeast(req.version, 49))
            throw badRequest(
              "Additional properties are not allowed ('tag' was unexpected)",
              'body.interfaceAttachment.tag',
            );
          // Nova's NetworkInterfaceTaggedAttachNotSupported
          throw badRequest(
            'Tagged network interface attach is not supported.',
            'body.interfaceAttachment.tag',
          );
        }
        const attached = await engine
          .attachInterface(
            instance.id,
            {
              ...(a.net_id !== undefined ? { networkId: a.net_id } : {}),
              ...(a.port_id !== undefined ? { portId: a.port_id } : {}),
            },
            contextOf(req, requestId),
          )
          .catch((e: unknown) => {
            throw attachFault(e, instance.id);
          });
        const ports = attached.ports ?? [];
        // the flow records the port it plugged in last
        const port = a.port_id !== undefined ? attachedPort(attached, a.port_id) : ports[ports.length - 1];
        if (!port) throw new ApiFault(500, `Failed to attach network adapter device to ${instance.id}`);
        return { status: 200, body: { interfaceAttachment: interfaceAttachmentView(port, req.version) } };
      },
    }),
    route({
      method: 'DELETE',
      url: `${base}/:portId`,
      service: 'compute',
      summary: 'Detach a port interface from a server',
      rules: [rule('delete')],
      params: portParams,
      handler: async ({ request, reply, auth, params, requestId }): Promise<RouteAnswer> => {
        const req = beginServers(services, request, reply, auth, rule('delete'), {});
        const instance = await serverFor(services, req.auth, params.serverId, rule('delete'));
        attachedPort(instance, params.portId);
        const { accepted, error } = await runToEnd(services, instance.id, requestId, () =>
          engine.detachInterface(instance.id, params.portId, contextOf(req, requestId)),
        );
        if (error !== undefined) {
          if (!accepted) {
            if (
              isNovaError(error, ErrorCode.NotFound) &&
              (error.details as { kind?: string }).kind !== 'instance'
            )
              throw notFound(`Instance ${instance.id} does not have a port with id ${params.portId}`);
            if (isNovaError(error, ErrorCode.CapabilityUnsupported))
              throw badRequest(`Detaching interfaces is not supported for instance ${instance.id}.`);
            throw error;
          }
          request.log.warn(
            { err: error, instanceId: instance.id, requestId },
            'accepted interface detach failed',
          );
        }
        return { status: 202 };
      },
    }),
  ];
}
