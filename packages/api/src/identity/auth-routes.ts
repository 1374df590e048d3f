import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import { type RouteSpec, route } from '../http/route.js';
import { authRequestSchema } from './auth-request.js';
import {
  authorize,
  callerOf,
  collectionLinks,
  domainView,
  policyTarget,
  projectView,
  selfUrl,
} from './identity-route-common.js';
import type { IdentityService } from './identity-service.js';
import { type TokenInfo, tokenBody } from './token-view.js';

const tokenQuery = z.object({ nocatalog: z.string().max(16).optional() });

/** Keystone's v3 version document (`GET /v3`). */
export function identityVersion(services: ApiServices): Record<string, unknown> {
  return {
    version: {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${services.urls.identity}/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    },
  };
}

/**
 * `/v3` and `/v3/auth`: the version document, token issue (password and token methods; project,
 * domain, system or no scope), validation, check and revocation of a subject token, and the
 * caller's catalog, projects, domains and system scope.
 */
export function authRoutes(services: ApiServices, identity: IdentityService): RouteSpec[] {
  const subjectOf = async (headers: Record<string, unknown>): Promise<{ token: string; info: TokenInfo }> => {
    const header = headers['x-subject-token'];
    const token = Array.isArray(header) ? header[0] : header;
    if (typeof token !== 'string' || token === '') throw new ApiFault(404, 'Could not find token.');
    try {
      return { token, info: await identity.inspect(token) };
    } catch (e) {
      if (e instanceof ApiFault && e.status === 401) throw new ApiFault(404, 'Could not find token.');
      throw e;
    }
  };

  return [
    route({
      method: 'GET',
      url: '/v3',
      service: 'identity',
      summary: 'Identity v3 version document',
      auth: 'none',
      handler: async () => ({ status: 200, body: identityVersion(services) }),
    }),
    route({
      method: 'POST',
      url: '/v3/auth/tokens',
      service: 'identity',
      summary: 'Authenticate and issue a token',
      auth: 'none',
      query: tokenQuery,
      body: z.object({ auth: authRequestSchema }),
      handler: async ({ body, query }) => {
        const { token, info } = await identity.issue(body.auth);
        const catalog = query.nocatalog === undefined ? identity.catalog() : undefined;
        return {
          status: 201,
          headers: { 'X-Subject-Token': token, Vary: 'X-Auth-Token' },
          body: { token: tokenBody(info, catalog) },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/auth/tokens',
      service: 'identity',
      summary: 'Validate a token (X-Subject-Token); HEAD checks it',
      rules: ['identity:validate_token', 'identity:check_token'],
      query: tokenQuery,
      handler: async ({ auth, request, query }) => {
        const caller = callerOf(auth);
        const { token, info } = await subjectOf(request.headers);
        const rule = request.method === 'HEAD' ? 'identity:check_token' : 'identity:validate_token';
        authorize(services, rule, caller, policyTarget({ token: { user_id: info.user.id } }));
        const catalog = query.nocatalog === undefined ? identity.catalog() : undefined;
        return {
          status: 200,
          headers: { 'X-Subject-Token': token, Vary: 'X-Auth-Token' },
          body: { token: tokenBody(info, catalog) },
        };
      },
    }),
    route({
      method: 'DELETE',
      url: '/v3/auth/tokens',
      service: 'identity',
      summary: 'Revoke a token (X-Subject-Token)',
      rules: ['identity:revoke_token'],
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        const { token, info } = await subjectOf(request.headers);
        authorize(
          services,
          'identity:revoke_token',
          caller,
          policyTarget({ token: { user_id: info.user.id } }),
        );
        await identity.revokeToken(token);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/auth/catalog',
      service: 'identity',
      summary: 'The service catalog of the caller’s token',
      rules: ['identity:get_auth_catalog'],
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:get_auth_catalog', caller);
        if (!caller.projectId)
          throw new ApiFault(403, 'A project-scoped token is required to produce a service catalog.');
        return {
          status: 200,
          body: { catalog: identity.catalog(), links: { self: selfUrl(services, request) } },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/auth/projects',
      service: 'identity',
      summary: 'Projects the caller may scope a token to',
      rules: ['identity:get_auth_projects'],
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:get_auth_projects', caller);
        const projects = await identity.projectsOf(caller.userId, { enabledOnly: true });
        return {
          status: 200,
          body: {
            projects: projects.map((p) => projectView(services, p)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/auth/domains',
      service: 'identity',
      summary: 'Domains the caller may scope a token to',
      rules: ['identity:get_auth_domains'],
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:get_auth_domains', caller);
        const domains = await identity.domainsOf(caller.userId);
        return {
          status: 200,
          body: {
            domains: domains.map((d) => domainView(services, d)),
            links: collectionLinks(services, request),
          },
        };
      },
    }),
    route({
      method: 'GET',
      url: '/v3/auth/system',
      service: 'identity',
      summary: 'Whether the caller may scope a token to the system',
      rules: ['identity:get_auth_system'],
      handler: async ({ auth, request }) => {
        const caller = callerOf(auth);
        authorize(services, 'identity:get_auth_system', caller);
        const roles = await identity.rolesOf(caller.userId, { type: 'system' });
        return {
          status: 200,
          body: { system: roles.length ? [{ all: true }] : [], links: collectionLinks(services, request) },
        };
      },
    }),
  ];
}
