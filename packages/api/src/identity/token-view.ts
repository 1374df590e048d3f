import type { IdentityUser } from './identity-backend.js';
import type { Domain, Project } from './project-store.js';
import type { Role } from './role-store.js';
import type { CatalogEntry } from './service-catalog.js';
import type { TokenPayload } from './token-codec.js';

/** Everything a valid token stands for, resolved: user, scope and the roles on it. */
export interface TokenInfo {
  readonly payload: TokenPayload;
  readonly user: IdentityUser;
  readonly userDomain: Domain;
  /** The project of a project-scoped token. */
  readonly project: Project | null;
  readonly projectDomain: Domain | null;
  /** The domain of a domain-scoped token. */
  readonly domain: Domain | null;
  /** A system-scoped token. */
  readonly system: boolean;
  /** Effective roles on the scope (none for an unscoped token), sorted by name. */
  readonly roles: readonly Role[];
}

/**
 * A time as Keystone writes it: ISO-8601 in UTC with microseconds and `Z`
 * (`2026-12-02T13:00:00.000000Z`).
 */
export function keystoneTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * The `token` object of Keystone's token responses (`POST` and `GET /v3/auth/tokens`). A scoped
 * token carries its roles and, unless `catalog` is undefined (`?nocatalog`), the catalog; an
 * unscoped one carries neither, as Keystone's.
 */
export function tokenBody(
  info: TokenInfo,
  catalog: readonly CatalogEntry[] | undefined,
): Record<string, unknown> {
  const { payload, user, userDomain } = info;
  const token: Record<string, unknown> = {
    methods: [...payload.methods],
    user: {
      domain: { id: userDomain.id, name: userDomain.name },
      id: user.id,
      name: user.name,
      password_expires_at: null,
    },
    audit_ids: [...payload.auditIds],
    expires_at: keystoneTime(payload.expiresAt),
    issued_at: keystoneTime(payload.issuedAt),
  };
  const scoped = info.project !== null || info.domain !== null || info.system;
  if (info.project && info.projectDomain) {
    token.project = {
      domain: { id: info.projectDomain.id, name: info.projectDomain.name },
      id: info.project.id,
      name: info.project.name,
    };
    token.is_domain = false;
  } else if (info.domain) {
    token.domain = { id: info.domain.id, name: info.domain.name };
  } else if (info.system) {
    token.system = { all: true };
  }
  if (scoped) {
    token.roles = info.roles.map((r) => ({ id: r.id, name: r.name }));
    if (catalog) token.catalog = catalog;
  }
  return token;
}
