/** A user as an identity backend knows it (never with a password or its hash). */
export interface IdentityUser {
  readonly id: string;
  readonly name: string;
  readonly domainId: string;
  readonly enabled: boolean;
  readonly email: string | null;
  readonly description: string | null;
  readonly defaultProjectId: string | null;
}

/** A group as an identity backend knows it. */
export interface IdentityGroup {
  readonly id: string;
  readonly name: string;
  readonly domainId: string;
  readonly description: string;
}

/** A user lookup: by id, or by name within a domain. */
export type UserRef = { readonly id: string } | { readonly name: string; readonly domainId: string };

/**
 * Where users and groups come from, and who checks their passwords: the SQL store (read-write)
 * or a directory (LDAP, Active Directory; read-only). Projects, domains, roles and role
 * assignments always stay in SQL, whatever the backend.
 */
export interface IdentityBackend {
  /** `sql` or `ldap`. */
  readonly kind: string;
  /** Whether users and groups can be created, changed and deleted through the API. */
  readonly writable: boolean;
  /**
   * Checks a password. Resolves the user when the password is right and the user is enabled,
   * `undefined` otherwise (unknown user, wrong password, disabled: the caller cannot tell which).
   */
  authenticate(user: UserRef, password: string): Promise<IdentityUser | undefined>;
  getUser(ref: UserRef): Promise<IdentityUser | undefined>;
  listUsers(filter?: { readonly name?: string; readonly domainId?: string }): Promise<IdentityUser[]>;
  getGroup(id: string): Promise<IdentityGroup | undefined>;
  listGroups(filter?: { readonly name?: string; readonly domainId?: string }): Promise<IdentityGroup[]>;
  /** Groups the user is a member of (for group role assignments). */
  groupsOf(userId: string): Promise<IdentityGroup[]>;
  /** Members of a group. */
  membersOf(groupId: string): Promise<IdentityUser[]>;
  /**
   * For a backend that routes by domain (`DomainRoutedBackend`): the backend holding the users and
   * groups of a domain, or the user or group with this id; writes go there when it is writable.
   * Absent: this backend holds every domain's.
   */
  ownerOf?(target: { readonly domainId: string } | { readonly id: string }): IdentityBackend;
  close?(): Promise<void>;
}
