import { randomBytes } from 'node:crypto';
import { ErrorCode, type Instance, isNovaError } from '@nova-lfs/core';
import { z } from 'zod';
import { ApiFault, badRequest, conflict } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import type { AuthContext } from '../../http/auth-context.js';
import { atLeast, type Microversion } from '../microversion.js';
import { FlavorAttrs } from '../resources/flavor-attrs.js';
import { visibleFlavor } from '../resources/flavors-routes.js';
import { descriptionText, nameText, resourceDb } from '../resources/resource-common.js';
import { bootableImage, idOfRef } from './image-access.js';
import { defaultReservationId, type ServerAttrs } from './server-attrs.js';

const count = z
  .union([z.int(), z.string().regex(/^\d{1,4}$/, 'must be an integer')])
  .transform(Number)
  .pipe(z.int().min(1).max(1000));

const uuidText = z
  .string()
  .regex(
    /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/,
    'must be a UUID',
  );

const refText = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');

const metaKey = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');
const metaValue = z
  .string()
  .max(255)
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');

/** Server metadata as Nova validates it: at most 128 string items, keys 1-255, values at most 255. */
export const serverMetadata = z
  .record(metaKey, metaValue)
  .refine((m) => Object.keys(m).length <= 128, 'at most 128 metadata items');

const oneOrMany = z
  .union([uuidText, z.array(uuidText).max(100)])
  .transform((x) => (Array.isArray(x) ? x : [x]));

/**
 * The body of `POST /servers` up to 2.73. The server object is strict, as Nova's schema is
 * (`additionalProperties: false`): fields a caller may not set (`host`, `project_id`, `node`,
 * `tenant_id`) are refused with a 400 naming them, not ignored.
 */
export const createServerBody = z.object({
  server: z.strictObject({
    name: nameText(255),
    imageRef: refText,
    flavorRef: z.union([refText, z.int().nonnegative().transform(String)]),
    min_count: count.optional(),
    max_count: count.optional(),
    availability_zone: nameText(255).optional(),
    metadata: serverMetadata.optional(),
    // the ids are checked by requestedNetworks (naming networks[i].uuid / .port), not here
    networks: z
      .union([
        z.enum(['none', 'auto']),
        z
          .array(
            z.strictObject({
              uuid: z.string().max(1024).optional(),
              port: z.string().max(1024).optional(),
              fixed_ip: z.string().max(64).optional(),
              tag: z.string().max(60).optional(),
            }),
          )
          .max(100),
      ])
      .optional(),
    key_name: nameText(255).optional(),
    user_data: z
      .string()
      .max(65535)
      .regex(/^[A-Za-z0-9+/=\s]*$/, 'must be base64')
      .nullable()
      .optional(),
    description: descriptionText.optional(),
    security_groups: z
      .array(z.object({ name: nameText(255) }))
      .max(100)
      .optional(),
    adminPass: z.string().max(255).optional(),
    config_drive: z.union([z.boolean(), z.string().max(16)]).optional(),
    accessIPv4: z.string().max(64).optional(),
    accessIPv6: z.string().max(64).optional(),
    'OS-DCF:diskConfig': z.enum(['AUTO', 'MANUAL']).optional(),
    return_reservation_id: z.union([z.boolean(), z.string().max(8)]).optional(),
    block_device_mapping_v2: z
      .array(
        z.object({
          source_type: z.string().max(16),
          destination_type: z.string().max(16).optional(),
          boot_index: z
            .union([z.int(), z.string().max(8)])
            .nullable()
            .optional(),
          uuid: z.string().max(255).optional(),
          delete_on_termination: z.boolean().optional(),
        }),
      )
      .max(32)
      .optional(),
    personality: z.array(z.unknown()).max(0, 'file injection is not supported').optional(),
    tags: z.array(nameText(60)).max(50).optional(),
    trusted_image_certificates: z.array(z.string().max(255)).max(50).nullable().optional(),
  }),
  'os:scheduler_hints': z
    .looseObject({
      group: uuidText.optional(),
      same_host: oneOrMany.optional(),
      different_host: oneOrMany.optional(),
    })
    .optional(),
  'OS-SCH-HNT:scheduler_hints': z
    .looseObject({
      group: uuidText.optional(),
      same_host: oneOrMany.optional(),
      different_host: oneOrMany.optional(),
    })
    .optional(),
});

/** A validated create body. */
export type CreateServerBody = z.output<typeof createServerBody>;

/** Nova's `r-xxxxxxxx` reservation id. */
function reservationId(): string {
  return `r-${randomBytes(6)
    .toString('base64url')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')
    .slice(0, 8)}`;
}

/** What a create answers: the servers made and the request's reservation id. */
export interface CreatedServers {
  readonly instances: Instance[];
  readonly reservationId: string;
}

/**
 * Turns a validated `POST /servers` into an engine create: resolves the flavor (visible to the
 * caller) and image, applies `min_count`/`max_count` against the quota (as many as fit, at least
 * `min_count`), maps the scheduler hints, records the API-only attributes, and returns once the
 * engine admitted the request (the build goes on; its outcome is the server's state).
 * `idempotencyKey` makes a retried request return the servers of the first one.
 */
export async function createServers(
  services: ApiServices,
  attrs: ServerAttrs,
  auth: AuthContext,
  version: Microversion,
  body: CreateServerBody,
  idempotencyKey: string | undefined,
  onBuildError: (e: unknown) => void,
): Promise<CreatedServers> {
  const s = body.server;
  if (!auth.projectId) throw new ApiFault(403, 'A project-scoped token is required to create servers.');
  if (s.description !== undefined && !atLeast(version, 19))
    throw badRequest(
      "Invalid input for field/attribute server. Value: description. Additional properties are not allowed ('description' was unexpected)",
      'body.server.description',
    );
  if (s.tags !== undefined && !atLeast(version, 52))
    throw badRequest("Additional properties are not allowed ('tags' was unexpected)", 'body.server.tags');
  if (
    s.block_device_mapping_v2?.some(
      (b) => b.source_type !== 'image' || (b.destination_type ?? 'local') !== 'local',
    )
  )
    throw badRequest(
      'Only image-backed local boot is supported: this cloud has no volume service.',
      'body.server.block_device_mapping_v2',
    );
  if (s.availability_zone?.includes(':'))
    throw badRequest(
      'Forcing a host through availability_zone is not supported.',
      'body.server.availability_zone',
    );
  const min = s.min_count ?? 1;
  const max = s.max_count ?? min;
  if (max < min) throw badRequest('min_count must be <= max_count', 'body.server.max_count');
  const networks = await requestedNetworks(services, version, s.networks, max);

  const flavor = await visibleFlavor(
    services,
    new FlavorAttrs(resourceDb(services)),
    idOfRef(String(s.flavorRef)),
    auth,
  ).catch((e: unknown) => {
    if (e instanceof ApiFault && e.status === 404)
      throw badRequest(
        `Invalid flavorRef provided: flavor ${String(s.flavorRef)} could not be found.`,
        'body.server.flavorRef',
      );
    throw e;
  });
  const image = await bootableImage(services, auth, s.imageRef, 'body.server.imageRef');

  if (s.key_name !== undefined) {
    const key = await resourceDb(services)
      .selectFrom('compute_keypair')
      .select('name')
      .where('user_id', '=', auth.userId)
      .where('name', '=', s.key_name)
      .executeTakeFirst();
    if (!key) throw badRequest('Invalid key_name provided.', 'body.server.key_name');
  }
  const hints = body['os:scheduler_hints'] ?? body['OS-SCH-HNT:scheduler_hints'] ?? {};
  if (hints.group !== undefined) {
    const group = await services.engine.serverGroups.get(hints.group).catch(() => undefined);
    if (!group || (group.projectId !== auth.projectId && !services.policy.enforce('context_is_admin', auth)))
      throw badRequest(`Invalid server group ${hints.group}.`, 'body.os:scheduler_hints.group');
  }
  const engineHints = {
    ...(hints.group !== undefined ? { group: hints.group } : {}),
    ...(hints.same_host !== undefined ? { sameHost: hints.same_host } : {}),
    ...(hints.different_host !== undefined ? { differentHost: hints.different_host } : {}),
  };

  const input = (n: number) => ({
    name: s.name,
    projectId: auth.projectId!,
    userId: auth.userId,
    flavorId: flavor.flavor.id,
    imageId: image.id,
    count: n,
    ...(s.availability_zone !== undefined ? { availabilityZone: s.availability_zone } : {}),
    metadata: s.metadata ?? {},
    hints: engineHints,
    networks,
    ...(idempotencyKey !== undefined ? { requestId: idempotencyKey } : {}),
  });
  let submitted: Awaited<ReturnType<typeof services.engine.submit>>;
  try {
    submitted = await services.engine.submit(input(max));
  } catch (e) {
    // Nova creates as many as the quota allows, down to min_count
    if (!(isNovaError(e, ErrorCode.QuotaExceeded) && min < max)) throw e;
    submitted = await services.engine.submit(input(min));
  }
  submitted.done.catch(onBuildError);
  const plain =
    submitted.instances.length === 1 &&
    (s.description ?? null) === null &&
    s.key_name === undefined &&
    (s.user_data ?? null) === null;
  // a lone server without API attributes needs no row: its view derives them from its id
  if (plain)
    return {
      instances: submitted.instances,
      reservationId: defaultReservationId(submitted.instances[0]!.id),
    };
  const reservation = reservationId();
  await attrs.add(
    submitted.instances.map((instance, i) => ({
      instance_id: instance.id,
      description: s.description ?? null,
      key_name: s.key_name ?? null,
      reservation_id: reservation,
      launch_index: i,
      user_data: s.user_data ?? null,
    })),
  );
  return { instances: submitted.instances, reservationId: reservation };
}

/** A network id the engine and the NetworkAdapter both take: letters, digits and `-`. */
const NETWORK_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** A port id (the adapter's are UUIDs). */
const PORT_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

/** What the engine's create takes for one interface. */
type EngineNetworkRequest = { networkId: string } | { portId: string };

/**
 * Nova's `networks` of a create, checked against the cloud's network catalog (what Nova asks
 * Neutron) and mapped to the engine's requests:
 * - absent: required from 2.37 (Nova's schema); below it, as `auto`;
 * - `none` (2.37+): no interface;
 * - `auto` (2.37+) and `[]`: a port on the only network; none when the cloud has no network; 409
 *   `NetworkAmbiguous` when it has several (this cloud cannot allocate a network of its own, so
 *   `auto` never makes one);
 * - `[{uuid}]`: a new port on that network; `[{port}]`: that port (not with `max_count` > 1,
 *   Nova's `MultiplePortsNotApplicable`). `fixed_ip` is refused: the engine's requests carry no
 *   address. `tag` is accepted and not stored.
 * Unknown networks and ports are 400s (Nova's `NetworkNotFound`, `PortNotFound`); a port bound to
 * a server is a 409 (`PortInUse`).
 */
async function requestedNetworks(
  services: ApiServices,
  version: Microversion,
  networks: CreateServerBody['server']['networks'],
  maxCount: number,
): Promise<EngineNetworkRequest[]> {
  if (networks === undefined) {
    if (atLeast(version, 37))
      throw badRequest(
        "Invalid input for field/attribute server. Value: networks. 'networks' is a required property",
        'body.server.networks',
      );
    return autoNetwork(services);
  }
  if (typeof networks === 'string') {
    if (!atLeast(version, 37))
      throw badRequest(
        `Invalid input for field/attribute networks. Value: ${networks}. '${networks}' is not of type 'array'`,
        'body.server.networks',
      );
    return networks === 'none' ? [] : autoNetwork(services);
  }
  if (networks.length === 0) return autoNetwork(services);
  const requests: EngineNetworkRequest[] = [];
  const ports = new Set<string>();
  for (const [i, n] of networks.entries()) {
    const at = `networks[${i}]`;
    if (n.port !== undefined) {
      if (!PORT_ID.test(n.port))
        throw badRequest(
          `Invalid input for field/attribute ${at}.port: must be a port id (letters, digits and -, at most 128)`,
          `body.server.${at}.port`,
        );
      if (ports.has(n.port))
        throw badRequest(
          `Port ID '${n.port}' was specified twice: you cannot attach a port multiple times.`,
          `body.server.${at}.port`,
        );
      if (n.fixed_ip !== undefined)
        throw badRequest(
          `Specified Fixed IP '${n.fixed_ip}' cannot be used with port '${n.port}': the two cannot be specified together.`,
          `body.server.${at}.fixed_ip`,
        );
      ports.add(n.port);
      requests.push({ portId: n.port });
      continue;
    }
    if (n.uuid === undefined)
      throw badRequest("Bad network format: missing 'uuid'", `body.server.${at}.uuid`);
    if (!NETWORK_ID.test(n.uuid))
      throw badRequest(
        `Invalid input for field/attribute ${at}.uuid: must be a network id (letters, digits and -, starting with a letter or digit, at most 64)`,
        `body.server.${at}.uuid`,
      );
    if (n.fixed_ip !== undefined)
      throw badRequest(
        `Invalid input for field/attribute ${at}.fixed_ip: a fixed IP cannot be requested on create; create the server on the network, or make a port with the address and pass it as "port"`,
        `body.server.${at}.fixed_ip`,
      );
    requests.push({ networkId: n.uuid });
  }
  if (ports.size > 0 && maxCount > 1)
    throw badRequest(
      'Failed to launch instances: Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.',
      'body.server.max_count',
    );
  const catalog = services.network;
  const known = new Set((catalog ? await catalog.listNetworks() : []).map((n) => n.id));
  for (const r of requests) {
    if ('networkId' in r) {
      if (!known.has(r.networkId))
        throw badRequest(`Network ${r.networkId} could not be found.`, 'body.server.networks');
      continue;
    }
    const port = catalog
      ? await catalog.getPort(r.portId).catch((e: unknown) => {
          if (isNovaError(e, ErrorCode.NotFound) || isNovaError(e, ErrorCode.Validation)) return undefined;
          throw e;
        })
      : undefined;
    if (!port) throw badRequest(`Port id ${r.portId} could not be found.`, 'body.server.networks');
    if (port.instanceId !== undefined) throw conflict(`Port ${r.portId} is still in use.`);
  }
  return requests;
}

/** `auto`: the only network of the catalog; none without networks; NetworkAmbiguous with several. */
async function autoNetwork(services: ApiServices): Promise<EngineNetworkRequest[]> {
  const all = services.network ? await services.network.listNetworks() : [];
  if (all.length === 0) return [];
  if (all.length > 1)
    throw conflict(
      'More than one possible network found. Specify network ID(s) to select which one(s) to connect to.',
    );
  return [{ networkId: all[0]!.id }];
}
