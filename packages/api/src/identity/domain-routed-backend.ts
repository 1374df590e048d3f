import { ConfigurationError } from '@nova-lfs/core';
import type { IdentityBackend, IdentityGroup, IdentityUser, UserRef } from './identity-backend.js';

/**
 * A directory (LDAP, Active Directory) that serves one Keystone domain: Keystone's
 * domain-specific backend (`[identity] domain_specific_drivers_enabled`).
 */
export interface DirectoryDomain {
  /**
   * The domain's name, e.g. `ldap` (users log in with it as their user domain). The domain row
   * (id `backend.domainId`, this name) is created at start when missing.
   */
  readonly domainName: string;
  /**
   * The directory. Every user and group it answers carries `domainId`, the domain's id: not
   * `default` (the Default domain holds the SQL administrator), `[A-Za-z0-9_-]{1,64}`.
   */
  readonly backend: IdentityBackend & { readonly domainId: string };
}

/** Separates a directory domain's id from the directory's own id in a public id. */
const SEPARATOR = '~';
/** Longest public id: the width of the id columns (`actor_id`, revocations) and routes' limit. */
const MAX_PUBLIC_ID_LENGTH = 255;
const DOMAIN_ID = /^[A-Za-z0-9_-]{1,64}$/;

type ListFilter = { readonly name?: string; readonly domainId?: string };

/**
 * One directory with public ids: `<domainId>~<directory id>` out, the directory id back in.
 * Entries whose public id would be longer than {@link MAX_PUBLIC_ID_LENGTH}, or that name another
 * domain, are skipped (as Keystone skips entries it cannot map).
 */
class DirectoryView implements IdentityBackend {
  readonly kind: string;
  readonly writable = false;
  readonly #prefix: string;

  constructor(
    readonly domainId: string,
    readonly inner: IdentityBackend,
  ) {
    this.kind = inner.kind;
    this.#prefix = `${domainId}${SEPARATOR}`;
  }

  owns(id: string): boolean {
    return typeof id === 'string' && id.startsWith(this.#prefix) && id.length > this.#prefix.length;
  }

  async authenticate(ref: UserRef, password: string): Promise<IdentityUser | undefined> {
    const local = this.#ref(ref);
    return local === undefined ? undefined : this.#user(await this.inner.authenticate(local, password));
  }

  async getUser(ref: UserRef): Promise<IdentityUser | undefined> {
    const local = this.#ref(ref);
    return local === undefined ? undefined : this.#user(await this.inner.getUser(local));
  }

  async listUsers(filter: ListFilter = {}): Promise<IdentityUser[]> {
    return (await this.inner.listUsers(filter)).flatMap((u) => this.#user(u) ?? []);
  }

  async getGroup(id: string): Promise<IdentityGroup | undefined> {
    return this.owns(id) ? this.#group(await this.inner.getGroup(this.#local(id))) : undefined;
  }

  async listGroups(filter: ListFilter = {}): Promise<IdentityGroup[]> {
    return (await this.inner.listGroups(filter)).flatMap((g) => this.#group(g) ?? []);
  }

  async groupsOf(userId: string): Promise<IdentityGroup[]> {
    if (!this.owns(userId)) return [];
    return (await this.inner.groupsOf(this.#local(userId))).flatMap((g) => this.#group(g) ?? []);
  }

  async membersOf(groupId: string): Promise<IdentityUser[]> {
    if (!this.owns(groupId)) return [];
    return (await this.inner.membersOf(this.#local(groupId))).flatMap((u) => this.#user(u) ?? []);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  #local(id: string): string {
    return id.slice(this.#prefix.length);
  }

  #ref(ref: UserRef): UserRef | undefined {
    if ('id' in ref) return this.owns(ref.id) ? { id: this.#local(ref.id) } : undefined;
    return ref.domainId === this.domainId ? ref : undefined;
  }

  #public(id: string): string | undefined {
    const out = `${this.#prefix}${id}`;
    return out.length <= MAX_PUBLIC_ID_LENGTH ? out : undefined;
  }

  #user(user: IdentityUser | undefined): IdentityUser | undefined {
    if (user === undefined || user.domainId !== this.domainId) return undefined;
    const id = this.#public(user.id);
    return id === undefined ? undefined : { ...user, id };
  }

  #group(group: IdentityGroup | undefined): IdentityGroup | undefined {
    if (group === undefined || group.domainId !== this.domainId) return undefined;
    const id = this.#public(group.id);
    return id === undefined ? undefined : { ...group, id };
  }
}

/**
 * Keystone's domain-specific backends: users and groups of each directory domain come from its
 * directory (read-only), those of every other domain (Default included, with the bootstrap
 * administrator) from the base backend (SQL, writable). Projects, domains, roles and assignments
 * stay in SQL.
 *
 * **Ids.** A directory's users and groups get the public id `<domainId>~<directory id>`
 * (`ldap~alice`, `ldap~developers`); the base backend's ids (32 hex digits for SQL) never
 * contain `~`. So an id names its backend by its form alone: no directory can answer for an id
 * of SQL or of another directory, however its entries are named, and a role granted to a SQL
 * user can never be picked up by a directory user. Keystone keeps an id-mapping table
 * (`id_mapping`, SHA-256 public ids) instead; the prefix needs no table, and ids (with the role
 * assignments made to them) stay stable across restarts as long as the directory's id attribute
 * and the domain id do. Entries whose public id would exceed 255 characters are skipped.
 *
 * **Lookups.** By id: the backend the id's form names. By name: the backend of the given domain.
 * Lists with a `domainId` filter ask that domain's backend; lists without one ask only the base
 * backend, as Keystone lists its default driver (so `GET /v3/users?domain_id=...` is how a
 * directory is listed, and a directory outage does not break unfiltered lists).
 *
 * **Writes.** This backend writes nothing itself: {@link ownerOf} names the backend holding a
 * domain or an id, and the identity service writes through it when it is writable (403
 * otherwise, as Keystone answers for a read-only LDAP domain).
 */
export class DomainRoutedBackend implements IdentityBackend {
  readonly kind = 'domain-routed';
  /** Not itself writable: writes go to {@link ownerOf}'s backend. */
  readonly writable = false;
  readonly #base: IdentityBackend;
  readonly #views: ReadonlyMap<string, DirectoryView>;

  /**
   * @param base the backend of every domain not mapped to a directory (SQL)
   * @throws ConfigurationError (setting `identity.directories`) for a directory of the `default`
   *   domain, a malformed domain id, or two directories of one domain
   */
  constructor(base: IdentityBackend, directories: readonly DirectoryDomain[]) {
    this.#base = base;
    const views = new Map<string, DirectoryView>();
    for (const d of directories) {
      const id = d.backend.domainId;
      if (typeof id !== 'string' || !DOMAIN_ID.test(id))
        throw new ConfigurationError(
          'identity.directories',
          'a directory domain id must match [A-Za-z0-9_-]{1,64}',
        );
      if (id === 'default')
        throw new ConfigurationError(
          'identity.directories',
          `the directory of domain "${d.domainName}" has domainId "default": the Default domain holds the SQL administrator; give the directory its own domainId`,
        );
      if (views.has(id))
        throw new ConfigurationError('identity.directories', `two directories serve domain id "${id}"`);
      views.set(id, new DirectoryView(id, d.backend));
    }
    this.#views = views;
  }

  /** The ids of the domains served by a directory. */
  get directoryDomainIds(): string[] {
    return [...this.#views.keys()];
  }

  /**
   * The backend holding the users and groups of a domain, or the user or group with this id, with
   * public ids (a directory's read-only view, or the base backend). An id of no directory is the
   * base backend's (which answers "not found" for ids it never issued).
   */
  ownerOf(target: { readonly domainId: string } | { readonly id: string }): IdentityBackend {
    if ('domainId' in target) return this.#views.get(target.domainId) ?? this.#base;
    const id = target.id;
    const at = typeof id === 'string' ? id.indexOf(SEPARATOR) : -1;
    if (at <= 0) return this.#base;
    const view = this.#views.get(id.slice(0, at));
    return view?.owns(id) ? view : this.#base;
  }

  authenticate(ref: UserRef, password: string): Promise<IdentityUser | undefined> {
    return this.#ownerOfRef(ref).authenticate(ref, password);
  }

  getUser(ref: UserRef): Promise<IdentityUser | undefined> {
    return this.#ownerOfRef(ref).getUser(ref);
  }

  listUsers(filter: ListFilter = {}): Promise<IdentityUser[]> {
    return this.#ownerOfList(filter).listUsers(filter);
  }

  getGroup(id: string): Promise<IdentityGroup | undefined> {
    return this.ownerOf({ id }).getGroup(id);
  }

  listGroups(filter: ListFilter = {}): Promise<IdentityGroup[]> {
    return this.#ownerOfList(filter).listGroups(filter);
  }

  /** The user's groups in the user's own backend (memberships never cross backends). */
  groupsOf(userId: string): Promise<IdentityGroup[]> {
    return this.ownerOf({ id: userId }).groupsOf(userId);
  }

  membersOf(groupId: string): Promise<IdentityUser[]> {
    return this.ownerOf({ id: groupId }).membersOf(groupId);
  }

  /** Closes every directory and the base backend. */
  async close(): Promise<void> {
    await Promise.all([...[...this.#views.values()].map((v) => v.close()), this.#base.close?.()]);
  }

  #ownerOfRef(ref: UserRef): IdentityBackend {
    return 'id' in ref ? this.ownerOf({ id: ref.id }) : this.ownerOf({ domainId: ref.domainId });
  }

  #ownerOfList(filter: ListFilter): IdentityBackend {
    return filter.domainId === undefined ? this.#base : this.ownerOf({ domainId: filter.domainId });
  }
}
