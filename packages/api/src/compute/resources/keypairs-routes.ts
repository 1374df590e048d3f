import { z } from 'zod';
import { ApiFault, badRequest, conflict, notFound } from '../../http/api-fault.js';
import type { ApiServices } from '../../http/api-services.js';
import type { AuthContext } from '../../http/auth-context.js';
import { type RouteSpec, route } from '../../http/route.js';
import { atLeast, type Microversion } from '../microversion.js';
import { novaTime } from './aggregate-store.js';
import { generateSshKeyPair, type ParsedPublicKey, parseSshPublicKey, parseX509 } from './keypair-crypto.js';
import { ApiQuotas } from './quota-catalog.js';
import { beginCompute, callerOf, intQuery, resourceDb } from './resource-common.js';
import type { KeypairRow } from './resource-tables.js';

/** Nova's key pair names below 2.92: letters, digits, space, `_` and `-`, 1-255 characters. */
const keypairName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-zA-Z0-9 _-]+$/, 'must be letters, digits, spaces, _ and - only');
const userIdText = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be a user id');

const createBody = z.object({
  keypair: z.strictObject({
    name: keypairName,
    public_key: z.string().max(65_536).optional(),
    type: z.enum(['ssh', 'x509']).optional(),
    user_id: userIdText.optional(),
  }),
});
const userQuery = z.object({ user_id: userIdText.optional() });
const listQuery = z.object({
  user_id: userIdText.optional(),
  limit: intQuery.optional(),
  marker: z.string().max(255).optional(),
});
const nameParams = z.object({ name: z.string().min(1).max(255) });

function fail(error: z.ZodError): never {
  const issue = error.issues[0];
  const path = `body${issue?.path.length ? `.${issue.path.join('.')}` : ''}`;
  throw badRequest(`Invalid input for field/attribute ${path}: ${issue?.message ?? 'invalid'}`, path);
}

/**
 * `os-keypairs`: list, show, create (generating an RSA key pair when no public key is given: the
 * private key is in that answer only and never stored), import and delete, per user (`user_id`
 * for admins from 2.10); `type` from 2.2; the `key_pairs` quota per user.
 */
export function keypairRoutes(services: ApiServices): RouteSpec[] {
  const db = resourceDb(services);
  const quotas = new ApiQuotas(db);

  /** The user whose key pairs the request is about; `user_id` from 2.10, checked by the policy. */
  function targetUser(caller: AuthContext, asked: string | undefined, v: Microversion): string {
    return asked !== undefined && atLeast(v, 10) ? asked : caller.userId;
  }

  async function load(userId: string, name: string): Promise<KeypairRow> {
    const row = await db
      .selectFrom('compute_keypair')
      .selectAll()
      .where('user_id', '=', userId)
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw notFound(`Keypair ${name} not found for user ${userId}`);
    return row;
  }

  const typed = (out: Record<string, unknown>, row: Pick<KeypairRow, 'type'>, v: Microversion) => {
    if (atLeast(v, 2)) out.type = row.type;
    return out;
  };

  return [
    route({
      method: 'GET',
      url: '/v2.1/os-keypairs',
      service: 'compute',
      summary: 'List key pairs',
      rules: ['os_compute_api:os-keypairs:index'],
      query: listQuery,
      handler: async ({ request, reply, auth, query }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const userId = targetUser(caller, query.user_id, v);
        services.policy.authorize('os_compute_api:os-keypairs:index', caller, { user_id: userId });
        let rows = await db
          .selectFrom('compute_keypair')
          .selectAll()
          .where('user_id', '=', userId)
          .orderBy('name')
          .execute();
        let next: string | undefined;
        if (atLeast(v, 35)) {
          if (query.marker !== undefined) {
            const at = rows.findIndex((r) => r.name === query.marker);
            if (at < 0)
              throw new ApiFault(400, `marker [${query.marker}] not found`, { field: 'query.marker' });
            rows = rows.slice(at + 1);
          }
          if (query.limit !== undefined && rows.length > query.limit) {
            rows = rows.slice(0, query.limit);
            const params = new URLSearchParams({
              limit: String(query.limit),
              marker: rows.at(-1)?.name ?? '',
            });
            if (query.user_id !== undefined) params.set('user_id', query.user_id);
            next = `${services.urls.compute}/os-keypairs?${params.toString()}`;
          }
        }
        const body: Record<string, unknown> = {
          keypairs: rows.map((r) => ({
            keypair: typed({ name: r.name, public_key: r.public_key, fingerprint: r.fingerprint }, r, v),
          })),
        };
        if (next && rows.length > 0) body.keypairs_links = [{ rel: 'next', href: next }];
        return { status: 200, body };
      },
    }),
    route({
      method: 'GET',
      url: '/v2.1/os-keypairs/:name',
      service: 'compute',
      summary: 'Show a key pair',
      rules: ['os_compute_api:os-keypairs:show'],
      params: nameParams,
      query: userQuery,
      handler: async ({ request, reply, auth, params, query }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const userId = targetUser(caller, query.user_id, v);
        services.policy.authorize('os_compute_api:os-keypairs:show', caller, { user_id: userId });
        const r = await load(userId, params.name);
        const keypair = typed(
          {
            public_key: r.public_key,
            user_id: r.user_id,
            name: r.name,
            created_at: r.created_at,
            updated_at: null,
            deleted: false,
            deleted_at: null,
            id: Number(r.id),
            fingerprint: r.fingerprint,
          },
          r,
          v,
        );
        return { status: 200, body: { keypair } };
      },
    }),
    route({
      method: 'POST',
      url: '/v2.1/os-keypairs',
      service: 'compute',
      summary: 'Create (generate) or import a key pair',
      rules: ['os_compute_api:os-keypairs:create'],
      body: z.unknown(),
      handler: async ({ request, reply, auth, body }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const parsed = createBody.safeParse(body);
        if (!parsed.success) fail(parsed.error);
        const k = parsed.data.keypair;
        if (k.type !== undefined && !atLeast(v, 2))
          throw badRequest(
            "Invalid input for field/attribute keypair. Additional properties are not allowed ('type' was unexpected)",
            'body.keypair.type',
          );
        if (k.user_id !== undefined && !atLeast(v, 10))
          throw badRequest(
            "Invalid input for field/attribute keypair. Additional properties are not allowed ('user_id' was unexpected)",
            'body.keypair.user_id',
          );
        const userId = k.user_id ?? caller.userId;
        services.policy.authorize('os_compute_api:os-keypairs:create', caller, { user_id: userId });
        const type = k.type ?? 'ssh';

        let key: ParsedPublicKey;
        let privateKey: string | undefined;
        if (k.public_key !== undefined) {
          const read = type === 'x509' ? parseX509(k.public_key) : parseSshPublicKey(k.public_key);
          if (!read)
            throw badRequest(
              'Keypair data is invalid: failed to parse public key',
              'body.keypair.public_key',
            );
          key = read;
        } else if (type === 'x509') {
          throw badRequest(
            'An x509 key pair needs a public_key (a PEM certificate).',
            'body.keypair.public_key',
          );
        } else {
          const generated = generateSshKeyPair('Generated-by-Nova');
          key = generated;
          privateKey = generated.privateKey;
        }

        const limit = (await quotas.limits(caller.projectId ?? '')).key_pairs ?? -1;
        const count = await db
          .selectFrom('compute_keypair')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('user_id', '=', userId)
          .executeTakeFirst();
        if (limit >= 0 && Number(count?.n ?? 0) + 1 > limit)
          throw new ApiFault(403, 'Quota exceeded, too many key pairs.', { faultName: 'forbidden' });

        const now = novaTime(Date.now());
        let inserted = false;
        for (let attempt = 0; attempt < 5 && !inserted; attempt++) {
          const exists = await db
            .selectFrom('compute_keypair')
            .select('id')
            .where('user_id', '=', userId)
            .where('name', '=', k.name)
            .executeTakeFirst();
          if (exists) throw conflict(`Key pair '${k.name}' already exists.`);
          const top = await db
            .selectFrom('compute_keypair')
            .select((eb) => eb.fn.max('id').as('top'))
            .executeTakeFirst();
          try {
            await db
              .insertInto('compute_keypair')
              .values({
                id: Number(top?.top ?? 0) + 1,
                user_id: userId,
                name: k.name,
                type,
                public_key: key.publicKey,
                fingerprint: key.fingerprint,
                created_at: now,
              })
              .execute();
            inserted = true;
          } catch {
            // The id or the name was taken meanwhile: look again.
          }
        }
        if (!inserted) throw conflict(`Key pair '${k.name}' already exists.`);
        const out = typed(
          { name: k.name, public_key: key.publicKey, fingerprint: key.fingerprint, user_id: userId },
          { type },
          v,
        );
        if (privateKey !== undefined) out.private_key = privateKey;
        return { status: atLeast(v, 2) ? 201 : 200, body: { keypair: out } };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v2.1/os-keypairs/:name',
      service: 'compute',
      summary: 'Delete a key pair',
      rules: ['os_compute_api:os-keypairs:delete'],
      params: nameParams,
      query: userQuery,
      handler: async ({ request, reply, auth, params, query }) => {
        const v = beginCompute(request, reply);
        const caller = callerOf(auth);
        const userId = targetUser(caller, query.user_id, v);
        services.policy.authorize('os_compute_api:os-keypairs:delete', caller, { user_id: userId });
        const r = await load(userId, params.name);
        await db.deleteFrom('compute_keypair').where('id', '=', r.id).execute();
        return { status: atLeast(v, 2) ? 204 : 202 };
      },
    }),
  ];
}
