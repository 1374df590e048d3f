import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiFault } from '../http/api-fault.js';
import type { ApiServices } from '../http/api-services.js';
import type { AuthContext } from '../http/auth-context.js';
import type { PolicyTarget } from '../policy/policy-engine.js';
import type { IdentityGroup, IdentityUser } from './identity-backend.js';
import type { Domain, Project } from './project-store.js';
import type { Role } from './role-store.js';

/** The caller of an authenticated route (the HTTP layer guarantees one). */
export function callerOf(auth: AuthContext | null): AuthContext {
  if (!auth) throw new ApiFault(401, 'The request you have made requires authentication.');
  return auth;
}

/**
 * Checks a Keystone policy rule.
 * @throws ApiFault 403 in Keystone's words (`You are not authorized to perform the requested
 *   action: identity:list_users.`)
 */
export function authorize(
  services: ApiServices,
  rule: string,
  auth: AuthContext,
  target: PolicyTarget = {},
): void {
  if (!services.policy.enforce(rule, auth, target))
    throw new ApiFault(403, `You are not authorized to perform the requested action: ${rule}.`);
}

type TargetObject = Readonly<Record<string, string | null | undefined>>;

/**
 * A policy target as Keystone builds it: `{user: {id, domain_id}}` becomes `target.user.id` and
 * `target.user.domain_id`; `flat` entries (path parameters, query filters) are added as they are.
 */
export function policyTarget(
  objects: Readonly<Record<string, TargetObject | undefined>>,
  flat: Readonly<Record<string, string | null | undefined>> = {},
): PolicyTarget {
  const out: Record<string, string | null | undefined> = { ...flat };
  for (const [name, object] of Object.entries(objects)) {
    if (!object) continue;
    for (const [key, value] of Object.entries(object)) out[`target.${name}.${key}`] = value;
  }
  return out;
}

/** Target attributes of a user. */
export const userTarget = (u: IdentityUser | undefined): TargetObject | undefined =>
  u && { id: u.id, domain_id: u.domainId, name: u.name };
/** Target attributes of a group. */
export const groupTarget = (g: IdentityGroup | undefined): TargetObject | undefined =>
  g && { id: g.id, domain_id: g.domainId, name: g.name };
/** Target attributes of a project. */
export const projectTarget = (p: Project | undefined): TargetObject | undefined =>
  p && { id: p.id, domain_id: p.domainId, name: p.name };
/** Target attributes of a role (global roles: `domain_id` null). */
export const roleTarget = (r: Role | undefined): TargetObject | undefined =>
  r && { id: r.id, name: r.name, domain_id: null };
/** Target attributes of a domain. */
export const domainTarget = (d: Domain | undefined): TargetObject | undefined =>
  d && { id: d.id, name: d.name };

/**
 * Whether a path value can name anything: a value with control characters cannot (it is answered
 * as not found, never sent to the database).
 */
export function plausibleId(value: string): boolean {
  return value.length > 0 && value.length <= 255 && !/[\p{Cc}\p{Cs}]/u.test(value);
}

/** 404 in Keystone's words: `Could not find project: X.` */
export function notFoundFault(kind: string, id: string): ApiFault {
  return new ApiFault(404, `Could not find ${kind}: ${id}.`);
}

/** A description: any text but NUL or control characters other than tab and newlines. */
export const descriptionText = z
  .string()
  .max(65_535)
  .refine((s) => !/\p{Cc}/u.test(s.replace(/[\t\n\r]/g, '')), 'must not contain control characters');

/** Keystone's boolean query filters (`enabled=false`, `enabled=0`; anything else is true). */
export const boolQuery = z
  .string()
  .max(16)
  .transform((s) => !/^(0|false|f|no|n|off)$/i.test(s));

/** A query filter value (names, ids): no control characters. */
export const filterText = z
  .string()
  .max(255)
  .refine((s) => !/[\p{Cc}\p{Cs}]/u.test(s), 'must not contain control characters');

/** Query of the user and group lists: Keystone's `name` and `domain_id` filters. */
export const nameDomainQuery = z.object({ name: filterText.optional(), domain_id: filterText.optional() });

/** The backend's list filter from {@link nameDomainQuery}. */
export function nameDomainFilter(q: z.output<typeof nameDomainQuery>): { name?: string; domainId?: string } {
  return {
    ...(q.name !== undefined ? { name: q.name } : {}),
    ...(q.domain_id !== undefined ? { domainId: q.domain_id } : {}),
  };
}

/** A request's path and query as a URL under the public identity URL (`.../v3/projects?name=x`). */
export function selfUrl(services: ApiServices, request: FastifyRequest): string {
  const path = request.url.startsWith('/v3') ? request.url.slice(3) : request.url;
  return `${services.urls.identity}${path}`;
}

/** Keystone's collection links. */
export function collectionLinks(services: ApiServices, request: FastifyRequest) {
  return { self: selfUrl(services, request), previous: null, next: null };
}

/** Keystone's view of a project. */
export function projectView(services: ApiServices, p: Project): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    domain_id: p.domainId,
    description: p.description,
    enabled: p.enabled,
    parent_id: p.domainId,
    is_domain: false,
    tags: [],
    options: {},
    links: { self: `${services.urls.identity}/projects/${encodeURIComponent(p.id)}` },
  };
}

/** Keystone's view of a user (never a password). */
export function userView(services: ApiServices, u: IdentityUser): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: u.id,
    name: u.name,
    domain_id: u.domainId,
    enabled: u.enabled,
    password_expires_at: null,
    options: {},
    links: { self: `${services.urls.identity}/users/${encodeURIComponent(u.id)}` },
  };
  if (u.defaultProjectId !== null) view.default_project_id = u.defaultProjectId;
  if (u.email !== null) view.email = u.email;
  if (u.description !== null) view.description = u.description;
  return view;
}

/** Keystone's view of a group. */
export function groupView(services: ApiServices, g: IdentityGroup): Record<string, unknown> {
  return {
    id: g.id,
    name: g.name,
    domain_id: g.domainId,
    description: g.description,
    links: { self: `${services.urls.identity}/groups/${encodeURIComponent(g.id)}` },
  };
}

/** Keystone's view of a role. */
export function roleView(services: ApiServices, r: Role): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    domain_id: null,
    description: r.description,
    options: {},
    links: { self: `${services.urls.identity}/roles/${encodeURIComponent(r.id)}` },
  };
}

/** Keystone's view of a domain. */
export function domainView(services: ApiServices, d: Domain): Record<string, unknown> {
  return {
    id: d.id,
    name: d.name,
    description: d.description,
    enabled: d.enabled,
    tags: [],
    options: {},
    links: { self: `${services.urls.identity}/domains/${encodeURIComponent(d.id)}` },
  };
}

/**
 * The domain a create request without `domain_id` goes to, as Keystone picks it: the token's
 * domain, else its project's domain, else `default`.
 */
export function defaultDomainOf(auth: AuthContext): string {
  return auth.domainId ?? auth.projectDomainId ?? 'default';
}
