import { randomBytes } from 'node:crypto';
import { DuplicateError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import { ApiFault } from '../http/api-fault.js';
import type { PublicUrls } from '../http/api-services.js';
import type { AuthContext, TokenValidator } from '../http/auth-context.js';
import type { AuthRequest, DomainRef } from './auth-request.js';
import { type DirectoryDomain, DomainRoutedBackend } from './domain-routed-backend.js';
import type { IdentityBackend, IdentityGroup, IdentityUser, UserRef } from './identity-backend.js';
import { migrateIdentity } from './identity-migrations.js';
import type { IdentityTables } from './identity-tables.js';
import type { PasswordHasher } from './password-hasher.js';
import {
  type Domain,
  type NewProject,
  type Project,
  type ProjectChanges,
  ProjectStore,
} from './project-store.js';
import { RevocationList } from './revocation-list.js';
import { type Assignment, type Role, RoleStore, type TargetType } from './role-store.js';
import { type CatalogEntry, serviceCatalog } from './service-catalog.js';
import { type RotateOptions, SigningKeyRing } from './signing-keys.js';
import { SqlIdentityBackend } from './sql-backend.js';
import { TokenCache } from './token-cache.js';
import {
  type AuthMethod,
  decodeToken,
  encodeToken,
  type TokenPayload,
  type TokenScope,
  tokenKeyId,
} from './token-codec.js';
import type { TokenInfo } from './token-view.js';
import {
  type GroupChanges,
  isWritableBackend,
  type NewGroup,
  type NewUser,
  type UserChanges,
  type WritableIdentityBackend,
} from './writable-backend.js';

/** Options of {@link createIdentityService}. */
export interface IdentityServiceOptions {
  /** The API database (the identity tables are migrated there). */
  readonly db: Kysely<object>;
  /**
   * Where users and groups live (default: {@link SqlIdentityBackend} on `db`); with `directories`,
   * those of every domain not mapped to a directory.
   */
  readonly backend?: IdentityBackend;
  /**
   * Domains whose users and groups come from a directory (Keystone's domain-specific backends),
   * read-only: see {@link DomainRoutedBackend} for ids and routing. Each domain row is created
   * when missing (id `backend.domainId`, name `domainName`). The administrator stays in SQL.
   */
  readonly directories?: readonly DirectoryDomain[];
  /**
   * The bootstrap administrator's password. As `keystone-manage bootstrap` does, a start with a
   * password that differs from the stored one resets it (and revokes that user's tokens); a start
   * with the same password changes nothing.
   */
  readonly adminPassword: string;
  /** The bootstrap administrator's name in the `Default` domain (default `admin`). */
  readonly adminUser?: string;
  /** The bootstrap project in the `Default` domain (default `admin`). */
  readonly adminProject?: string;
  /** Token lifetime in seconds (default 3600, Keystone's; at least 300). */
  readonly tokenTtlSeconds?: number;
  /** Public URLs of the services, for the catalog. */
  readonly urls: PublicUrls;
  /** Epoch ms (default `Date.now`); tests move time with it. */
  readonly clock?: () => number;
  /** Password hashing of the default SQL backend (tests pass a cheaper scrypt cost). */
  readonly hasher?: PasswordHasher;
  /** Validated-token cache: lifetime in ms (default 5,000; 0: off) and size (default 10,000). */
  readonly cache?: { readonly ttlMs?: number; readonly max?: number };
}

/** A token just issued: the token string (for `X-Subject-Token`) and what it stands for. */
export interface IssuedToken {
  readonly token: string;
  readonly info: TokenInfo;
}

/** A role grant target: a project or domain by id, or the system. */
export type GrantTarget =
  | { readonly type: 'project' | 'domain'; readonly id: string }
  | { readonly type: 'system' };

/**
 * Keystone's Identity v3 service over SQL: tokens (issue, validate, revoke, signing key
 * rotation), effective roles, the service catalog, and the writes the API makes to projects,
 * users, groups, roles and role assignments. Validation is the HTTP layer's `TokenValidator`.
 *
 * Every write that can change what a token stands for (a disabled, deleted or re-passworded user;
 * a revoked role; a changed membership, project or role) takes effect at once in this process; in
 * other processes on the same database after at most the cache lifetime.
 */
export interface IdentityService extends TokenValidator {
  readonly backend: IdentityBackend;
  /** Token lifetime in ms. */
  readonly tokenTtlMs: number;
  /** Projects and domains (reads). */
  readonly projects: Pick<ProjectStore, 'get' | 'list' | 'domain' | 'domains'>;
  /** Roles and assignments (reads). */
  readonly roles: Pick<RoleStore, 'get' | 'list' | 'assignments' | 'has'>;

  /**
   * Authenticates (password and/or token methods) and issues a token for the requested scope.
   * @throws ApiFault 401 (Keystone's one message) for a wrong password, an unknown or disabled
   *   user, an invalid token, or a scope the user has no role on; 400 for a method without its
   *   payload; 403 for re-scoping a system-scoped token to a project or domain
   */
  issue(auth: AuthRequest): Promise<IssuedToken>;
  /** @throws ApiFault 401 for a malformed, unknown, expired or revoked token */
  validate(token: string): Promise<AuthContext>;
  /** What a valid token stands for. @throws ApiFault 401 as {@link validate} */
  inspect(token: string): Promise<TokenInfo>;
  /** Revokes a token (and the tokens re-scoped from it). @throws ApiFault 401 for an invalid token */
  revokeToken(token: string): Promise<TokenInfo>;
  /** Revokes every token of the user issued until now. */
  revokeUserTokens(userId: string): Promise<void>;
  /**
   * Makes a new primary signing key; tokens signed by the previous keys (up to `keep`) still
   * validate. @returns the new key id
   */
  rotateKeys(options?: RotateOptions): Promise<string>;
  /** The service catalog (compute, image, identity). */
  catalog(): CatalogEntry[];
  /** Effective roles of a user on a target (direct, through groups, implied). */
  rolesOf(userId: string, target: GrantTarget): Promise<Role[]>;
  /** Projects on which the user holds a role (directly or through a group). */
  projectsOf(userId: string, options?: { readonly enabledOnly?: boolean }): Promise<Project[]>;
  /** Domains on which the user holds a role. */
  domainsOf(userId: string): Promise<Domain[]>;

  /** @throws ApiFault 409 for a name taken in the domain */
  createProject(project: NewProject): Promise<Project>;
  /** `undefined` when there is no such project. @throws ApiFault 409 */
  updateProject(id: string, changes: ProjectChanges): Promise<Project | undefined>;
  deleteProject(id: string): Promise<boolean>;

  /** @throws ApiFault 403 when the backend is read-only; 409 for a name taken in the domain */
  createUser(user: NewUser): Promise<IdentityUser>;
  /** Disabling or a new password revokes the user's tokens. @throws ApiFault 403, 409 */
  updateUser(id: string, changes: UserChanges): Promise<IdentityUser | undefined>;
  /** Also removes its assignments and revokes its tokens. @throws ApiFault 403 */
  deleteUser(id: string): Promise<boolean>;
  /**
   * A user's own password change: `original` must be the current password.
   * @throws ApiFault 401 when it is not; 403 when the backend is read-only
   */
  changePassword(id: string, original: string, password: string): Promise<void>;

  createGroup(group: NewGroup): Promise<IdentityGroup>;
  updateGroup(id: string, changes: GroupChanges): Promise<IdentityGroup | undefined>;
  deleteGroup(id: string): Promise<boolean>;
  addUserToGroup(groupId: string, userId: string): Promise<void>;
  removeUserFromGroup(groupId: string, userId: string): Promise<boolean>;
  isUserInGroup(groupId: string, userId: string): Promise<boolean>;

  /** @throws ApiFault 409 for a taken name */
  createRole(role: { readonly name: string; readonly description?: string }): Promise<Role>;
  updateRole(
    id: string,
    changes: { readonly name?: string; readonly description?: string },
  ): Promise<Role | undefined>;
  deleteRole(id: string): Promise<boolean>;
  grant(assignment: Assignment): Promise<void>;
  revoke(assignment: Assignment): Promise<boolean>;

  /** Closes the backend (not the database, which the caller owns). */
  close(): Promise<void>;
}

/** Keystone's answer to every failed authentication, whatever the reason. */
export function unauthorized(): ApiFault {
  return new ApiFault(401, 'The request you have made requires authentication.');
}

interface ResolvedScope {
  readonly project: Project | null;
  readonly projectDomain: Domain | null;
  readonly domain: Domain | null;
  readonly system: boolean;
  readonly roles: readonly Role[];
}

interface CacheEntry {
  readonly userId: string;
  readonly auditIds: readonly string[];
  readonly expiresAt: number;
  readonly info: TokenInfo;
}

const unscopedResolution: ResolvedScope = {
  project: null,
  projectDomain: null,
  domain: null,
  system: false,
  roles: [],
};

/** Keystone's audit ids: 16 random bytes, URL-safe base64 without padding. */
function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

class SqlIdentityService implements IdentityService {
  readonly projects: ProjectStore;
  readonly roles: RoleStore;
  readonly tokenTtlMs: number;
  private readonly revocations: RevocationList;
  private readonly cache: TokenCache<CacheEntry>;
  private readonly entries: CatalogEntry[];

  constructor(
    db: Kysely<IdentityTables>,
    readonly backend: IdentityBackend,
    private readonly ring: SigningKeyRing,
    private readonly clock: () => number,
    options: IdentityServiceOptions,
  ) {
    this.projects = new ProjectStore(db, clock);
    this.roles = new RoleStore(db);
    this.revocations = new RevocationList(db, clock);
    this.tokenTtlMs = Math.max(300, options.tokenTtlSeconds ?? 3600) * 1000;
    this.cache = new TokenCache<CacheEntry>({ ...options.cache, clock });
    this.entries = serviceCatalog(options.urls);
  }

  catalog(): CatalogEntry[] {
    return this.entries;
  }

  // ---- bootstrap ------------------------------------------------------------------------------

  async bootstrap(adminName: string, adminProject: string, password: string): Promise<void> {
    const admin = await this.roles.ensure('admin');
    await this.roles.ensure('member');
    await this.roles.ensure('reader');
    const project = await this.projects.ensure(
      adminProject,
      'default',
      'Bootstrap project for initializing the cloud.',
    );
    const user = await this.bootstrapUser(adminName, password);
    await this.roles.grant({
      actorType: 'user',
      actorId: user.id,
      targetType: 'project',
      targetId: project.id,
      roleId: admin.id,
    });
    await this.roles.grant({
      actorType: 'user',
      actorId: user.id,
      targetType: 'system',
      targetId: 'all',
      roleId: admin.id,
    });
  }

  private async bootstrapUser(name: string, password: string): Promise<IdentityUser> {
    const backend = ownerOf(this.backend, { domainId: 'default' });
    const ref = { name, domainId: 'default' };
    if (!isWritableBackend(backend)) {
      const user = await backend.getUser(ref);
      if (!user)
        throw new Error(
          `identity bootstrap: the administrator "${name}" is not in the ${backend.kind} backend's Default domain`,
        );
      return user;
    }
    const existing = await backend.getUser(ref);
    if (!existing) {
      try {
        return await backend.createUser({ name, domainId: 'default', password, enabled: true });
      } catch (e) {
        if (!(e instanceof DuplicateError)) throw e;
        return (await backend.getUser(ref))!; // another process created it first
      }
    }
    // keystone-manage bootstrap: re-enable the user and reset a password that does not match
    const changes: { enabled?: boolean; password?: string } = {};
    if (!existing.enabled) changes.enabled = true;
    if (!(await backend.checkPassword(existing.id, password))) changes.password = password;
    if (Object.keys(changes).length === 0) return existing;
    const updated = (await backend.updateUser(existing.id, changes)) ?? existing;
    if (changes.password !== undefined) await this.revokeUserTokens(existing.id);
    return updated;
  }

  // ---- tokens ---------------------------------------------------------------------------------

  async issue(auth: AuthRequest): Promise<IssuedToken> {
    const methods = auth.identity.methods;
    let user: IdentityUser | undefined;
    let parent: TokenInfo | undefined;
    if (methods.includes('password')) {
      const payload = auth.identity.password;
      if (!payload)
        throw new ApiFault(
          400,
          'Invalid input for field/attribute body.auth.identity.password: Expecting to find password in identity.',
          {
            field: 'body.auth.identity.password',
          },
        );
      const ref = await this.userRefOf(payload.user);
      user = ref ? await this.backend.authenticate(ref, payload.user.password) : undefined;
      if (!user) throw unauthorized();
    }
    if (methods.includes('token')) {
      const payload = auth.identity.token;
      if (!payload)
        throw new ApiFault(
          400,
          'Invalid input for field/attribute body.auth.identity.token: Expecting to find token in identity.',
          {
            field: 'body.auth.identity.token',
          },
        );
      parent = await this.inspect(payload.id);
      if (user && user.id !== parent.user.id) throw unauthorized();
      user ??= parent.user;
    }
    if (!user) throw unauthorized();
    const userDomain = await this.projects.domain({ id: user.domainId });
    if (!userDomain?.enabled || !user.enabled) throw unauthorized();

    const scope = await this.requestedScope(auth.scope, user, parent);
    const resolved = await this.resolveScope(user, scope);

    const now = this.clock();
    const revokedAt = await this.revocations.userRevokedAt(user.id);
    const issuedAt = revokedAt !== undefined && revokedAt >= now ? revokedAt + 1 : now;
    // a re-scoped token keeps the original's expiry, so re-scoping never extends a login
    const expiresAt = parent ? parent.payload.expiresAt : issuedAt + this.tokenTtlMs;
    if (expiresAt <= issuedAt) throw unauthorized();
    const chain = parent ? [parent.payload.auditIds[1] ?? parent.payload.auditIds[0]!] : [];
    const allMethods = [...new Set<AuthMethod>([...methods, ...(parent?.payload.methods ?? [])])];
    const key = this.ring.primary();
    const payload: TokenPayload = {
      keyId: key.id,
      userId: user.id,
      scope,
      methods: allMethods,
      issuedAt,
      expiresAt,
      auditIds: [newAuditId(), ...chain],
    };
    const token = encodeToken(payload, key.secret);
    return { token, info: { payload, user, userDomain, ...resolved } };
  }

  async validate(token: string): Promise<AuthContext> {
    const info = await this.inspect(token);
    return {
      userId: info.user.id,
      userName: info.user.name,
      userDomainId: info.user.domainId,
      projectId: info.project?.id ?? null,
      projectName: info.project?.name ?? null,
      projectDomainId: info.project?.domainId ?? null,
      domainId: info.domain?.id ?? null,
      system: info.system,
      roles: info.roles.map((r) => r.name.toLowerCase()),
      auditId: info.payload.auditIds[0]!,
      expiresAt: info.payload.expiresAt,
    };
  }

  async inspect(token: string): Promise<TokenInfo> {
    const hit = this.cache.get(token);
    if (hit) return hit.info;
    const generation = this.cache.generation;
    let payload = decodeToken(token, (id) => this.ring.secret(id));
    if (!payload) {
      const keyId = tokenKeyId(token);
      if (keyId !== undefined && (await this.ring.refreshFor(keyId)))
        payload = decodeToken(token, (id) => this.ring.secret(id));
    }
    if (!payload || payload.expiresAt <= this.clock()) throw unauthorized();
    if (await this.revocations.isRevoked(payload)) throw unauthorized();
    const user = await this.backend.getUser({ id: payload.userId });
    if (!user?.enabled) throw unauthorized();
    const userDomain = await this.projects.domain({ id: user.domainId });
    if (!userDomain?.enabled) throw unauthorized();
    const resolved = await this.resolveScope(user, payload.scope);
    const info: TokenInfo = { payload, user, userDomain, ...resolved };
    this.cache.set(
      token,
      { userId: user.id, auditIds: payload.auditIds, expiresAt: payload.expiresAt, info },
      generation,
    );
    return info;
  }

  async revokeToken(token: string): Promise<TokenInfo> {
    const info = await this.inspect(token);
    const auditId = info.payload.auditIds[0]!;
    await this.revocations.revokeAudit(auditId, info.payload.expiresAt);
    this.cache.dropAudit(auditId);
    return info;
  }

  async revokeUserTokens(userId: string): Promise<void> {
    await this.revocations.revokeUser(userId, this.tokenTtlMs);
    this.cache.dropUser(userId);
  }

  async rotateKeys(options?: RotateOptions): Promise<string> {
    const id = await this.ring.rotate(options);
    this.cache.clear(); // tokens of retired keys must stop validating at once
    return id;
  }

  private async domainOf(ref: DomainRef): Promise<Domain | undefined> {
    return ref.id !== undefined
      ? this.projects.domain({ id: ref.id })
      : this.projects.domain({ name: ref.name! });
  }

  private async userRefOf(user: {
    readonly id?: string | undefined;
    readonly name?: string | undefined;
    readonly domain?: DomainRef | undefined;
  }): Promise<UserRef | undefined> {
    if (user.id !== undefined) return { id: user.id };
    const domain = await this.domainOf(user.domain!);
    return domain ? { name: user.name!, domainId: domain.id } : undefined;
  }

  /** The scope a token request asks for (Keystone falls back to the user's default project). */
  private async requestedScope(
    scope: AuthRequest['scope'],
    user: IdentityUser,
    parent: TokenInfo | undefined,
  ): Promise<TokenScope> {
    if (scope === 'unscoped') return { type: 'unscoped' };
    if (scope === undefined) {
      if (user.defaultProjectId) {
        const project = await this.projects.get({ id: user.defaultProjectId });
        if (project?.enabled && (await this.rolesOf(user.id, { type: 'project', id: project.id })).length > 0)
          return { type: 'project', id: project.id };
      }
      return { type: 'unscoped' };
    }
    if (parent?.system && (scope.project || scope.domain))
      throw new ApiFault(
        403,
        'You are not authorized to perform the requested action: Using a system-scoped token to create a project-scoped or domain-scoped token is not allowed.',
      );
    if (scope.system) return { type: 'system' };
    if (scope.domain) {
      const domain = await this.domainOf(scope.domain);
      if (!domain) throw unauthorized();
      return { type: 'domain', id: domain.id };
    }
    const p = scope.project!;
    if (p.id !== undefined) return { type: 'project', id: p.id };
    const domain = await this.domainOf(p.domain!);
    const project = domain ? await this.projects.get({ name: p.name!, domainId: domain.id }) : undefined;
    if (!project) throw unauthorized();
    return { type: 'project', id: project.id };
  }

  /** The scope's objects and the user's roles on it. @throws ApiFault 401 when it is not usable */
  private async resolveScope(user: IdentityUser, scope: TokenScope): Promise<ResolvedScope> {
    switch (scope.type) {
      case 'unscoped':
        return unscopedResolution;
      case 'project': {
        const project = await this.projects.get({ id: scope.id });
        if (!project?.enabled) throw unauthorized();
        const projectDomain = await this.projects.domain({ id: project.domainId });
        if (!projectDomain?.enabled) throw unauthorized();
        const roles = await this.rolesOf(user.id, { type: 'project', id: project.id });
        if (roles.length === 0) throw unauthorized();
        return { project, projectDomain, domain: null, system: false, roles };
      }
      case 'domain': {
        const domain = await this.projects.domain({ id: scope.id });
        if (!domain?.enabled) throw unauthorized();
        const roles = await this.rolesOf(user.id, { type: 'domain', id: domain.id });
        if (roles.length === 0) throw unauthorized();
        return { project: null, projectDomain: null, domain, system: false, roles };
      }
      case 'system': {
        const roles = await this.rolesOf(user.id, { type: 'system' });
        if (roles.length === 0) throw unauthorized();
        return { project: null, projectDomain: null, domain: null, system: true, roles };
      }
    }
  }

  // ---- roles and projects -------------------------------------------------------------------

  async rolesOf(userId: string, target: GrantTarget): Promise<Role[]> {
    const groups = (await this.backend.groupsOf(userId)).map((g) => g.id);
    const [type, id]: [TargetType, string] =
      target.type === 'system' ? ['system', 'all'] : [target.type, target.id];
    return this.roles.effectiveRoles(userId, groups, type, id);
  }

  async projectsOf(userId: string, options: { readonly enabledOnly?: boolean } = {}): Promise<Project[]> {
    const groups = (await this.backend.groupsOf(userId)).map((g) => g.id);
    const ids = await this.roles.targetsOf(userId, groups, 'project');
    return this.projects.list({ ids, ...(options.enabledOnly ? { enabled: true } : {}) });
  }

  async domainsOf(userId: string): Promise<Domain[]> {
    const groups = (await this.backend.groupsOf(userId)).map((g) => g.id);
    const ids = new Set(await this.roles.targetsOf(userId, groups, 'domain'));
    return (await this.projects.domains({ enabled: true })).filter((d) => ids.has(d.id));
  }

  async createProject(project: NewProject): Promise<Project> {
    try {
      return await this.projects.create(project);
    } catch (e) {
      throw conflictOf(e, 'project', project.domainId);
    }
  }

  async updateProject(id: string, changes: ProjectChanges): Promise<Project | undefined> {
    try {
      const current = await this.projects.get({ id });
      const project = await this.projects.update(id, changes);
      if (project && current?.enabled !== project.enabled) this.cache.clear();
      return project;
    } catch (e) {
      throw conflictOf(e, 'project', (await this.projects.get({ id }))?.domainId ?? 'default');
    }
  }

  async deleteProject(id: string): Promise<boolean> {
    const deleted = await this.projects.delete(id);
    this.cache.clear();
    return deleted;
  }

  async createRole(role: { readonly name: string; readonly description?: string }): Promise<Role> {
    try {
      return await this.roles.create(role);
    } catch (e) {
      throw conflictOf(e, 'role');
    }
  }

  async updateRole(
    id: string,
    changes: { readonly name?: string; readonly description?: string },
  ): Promise<Role | undefined> {
    try {
      const role = await this.roles.update(id, changes);
      this.cache.clear();
      return role;
    } catch (e) {
      throw conflictOf(e, 'role');
    }
  }

  async deleteRole(id: string): Promise<boolean> {
    const deleted = await this.roles.delete(id);
    this.cache.clear();
    return deleted;
  }

  async grant(assignment: Assignment): Promise<void> {
    await this.roles.grant(assignment);
  }

  async revoke(assignment: Assignment): Promise<boolean> {
    const revoked = await this.roles.revoke(assignment);
    this.cache.clear();
    return revoked;
  }

  // ---- users and groups -----------------------------------------------------------------------

  /** The writable backend holding a domain's or an id's users and groups. @throws ApiFault 403 */
  private writable(target: { readonly domainId: string } | { readonly id: string }): WritableIdentityBackend {
    const backend = ownerOf(this.backend, target);
    if (!isWritableBackend(backend))
      throw new ApiFault(
        403,
        backend.kind === 'ldap'
          ? 'LDAP does not support write operations'
          : `The ${backend.kind} identity backend does not support write operations`,
      );
    return backend;
  }

  async createUser(user: NewUser): Promise<IdentityUser> {
    const backend = this.writable({ domainId: user.domainId });
    try {
      return await backend.createUser(user);
    } catch (e) {
      throw conflictOf(e, 'user', user.domainId);
    }
  }

  async updateUser(id: string, changes: UserChanges): Promise<IdentityUser | undefined> {
    const backend = this.writable({ id });
    let user: IdentityUser | undefined;
    try {
      user = await backend.updateUser(id, changes);
    } catch (e) {
      throw conflictOf(e, 'user', (await backend.getUser({ id }))?.domainId ?? 'default');
    }
    if (user && (changes.enabled === false || changes.password !== undefined))
      await this.revokeUserTokens(id);
    else if (user) this.cache.dropUser(id);
    return user;
  }

  async deleteUser(id: string): Promise<boolean> {
    const backend = this.writable({ id });
    const deleted = await backend.deleteUser(id);
    await this.roles.forgetActor('user', id);
    if (deleted) await this.revokeUserTokens(id);
    return deleted;
  }

  async changePassword(id: string, original: string, password: string): Promise<void> {
    const backend = this.writable({ id });
    if (!(await backend.checkPassword(id, original))) throw unauthorized();
    await backend.updateUser(id, { password });
    await this.revokeUserTokens(id);
  }

  async createGroup(group: NewGroup): Promise<IdentityGroup> {
    const backend = this.writable({ domainId: group.domainId });
    try {
      return await backend.createGroup(group);
    } catch (e) {
      throw conflictOf(e, 'group', group.domainId);
    }
  }

  async updateGroup(id: string, changes: GroupChanges): Promise<IdentityGroup | undefined> {
    const backend = this.writable({ id });
    try {
      return await backend.updateGroup(id, changes);
    } catch (e) {
      throw conflictOf(e, 'group', (await backend.getGroup(id))?.domainId ?? 'default');
    }
  }

  async deleteGroup(id: string): Promise<boolean> {
    const backend = this.writable({ id });
    const deleted = await backend.deleteGroup(id);
    await this.roles.forgetActor('group', id);
    this.cache.clear();
    return deleted;
  }

  async addUserToGroup(groupId: string, userId: string): Promise<void> {
    await this.membership(groupId, userId).addMember(groupId, userId);
    this.cache.clear();
  }

  async removeUserFromGroup(groupId: string, userId: string): Promise<boolean> {
    const removed = await this.membership(groupId, userId).removeMember(groupId, userId);
    this.cache.clear();
    return removed;
  }

  /**
   * The writable backend holding both the group and the user. @throws ApiFault 403 for a
   * read-only backend, or a group and a user of different backends (Keystone's
   * `CrossBackendNotAllowed`)
   */
  private membership(groupId: string, userId: string): WritableIdentityBackend {
    const backend = this.writable({ id: groupId });
    if (ownerOf(this.backend, { id: userId }) !== backend)
      throw new ApiFault(
        403,
        `Group membership across backend boundaries is not allowed. Group in question is ${groupId}, user is ${userId}.`,
      );
    return backend;
  }

  async isUserInGroup(groupId: string, userId: string): Promise<boolean> {
    const backend = ownerOf(this.backend, { id: groupId });
    if (isWritableBackend(backend)) return backend.isMember(groupId, userId);
    return (await this.backend.groupsOf(userId)).some((g) => g.id === groupId);
  }

  async close(): Promise<void> {
    await this.backend.close?.();
  }
}

/** The backend holding `target`: the backend itself unless it routes by domain. */
function ownerOf(
  backend: IdentityBackend,
  target: { readonly domainId: string } | { readonly id: string },
): IdentityBackend {
  return backend.ownerOf?.(target) ?? backend;
}

/** A duplicate name as Keystone words it (409); other errors pass unchanged. */
function conflictOf(error: unknown, kind: string, domainId?: string): unknown {
  if (!(error instanceof DuplicateError)) return error;
  const at = domainId === undefined ? '' : ` at domain ID ${domainId}`;
  return new ApiFault(
    409,
    `Conflict occurred attempting to store ${kind} - Duplicate entry found with name ${error.details.id}${at}.`,
  );
}

/**
 * Opens the identity service: migrates its tables, bootstraps (idempotently, so a restart keeps
 * every user, project, assignment and token) the roles `admin`, `member` and `reader` (admin
 * implies member implies reader), the administrator with the admin role on the admin project and
 * on the system, and a primary signing key.
 * With `directories`, also each directory's domain (created when missing).
 * @throws Error when `adminPassword` is empty, or a read-only backend does not know the
 *   administrator; ConfigurationError for a directory of the Default domain, or a directory
 *   domain whose id or name is taken by another domain
 */
export async function createIdentityService(options: IdentityServiceOptions): Promise<IdentityService> {
  if (!options.adminPassword) throw new Error('identity: adminPassword must not be empty');
  const clock = options.clock ?? Date.now;
  await migrateIdentity(options.db);
  const db = options.db as unknown as Kysely<IdentityTables>;
  const base =
    options.backend ??
    new SqlIdentityBackend(db, { ...(options.hasher ? { hasher: options.hasher } : {}), clock });
  const directories = options.directories ?? [];
  const backend = directories.length === 0 ? base : new DomainRoutedBackend(base, directories);
  const domains = new ProjectStore(db, clock);
  for (const d of directories)
    await domains.ensureDomain(
      d.backend.domainId,
      d.domainName,
      `Users and groups from the ${d.backend.kind} directory (read-only)`,
    );
  const ring = await SigningKeyRing.open(db, clock);
  const service = new SqlIdentityService(db, backend, ring, clock, options);
  await service.bootstrap(
    options.adminUser ?? 'admin',
    options.adminProject ?? 'admin',
    options.adminPassword,
  );
  return service;
}
