import { ConfigurationError, ErrorCode, NovaError } from '@nova-lfs/core';
import {
  AndFilter,
  Client,
  EqualityFilter,
  type Filter,
  FilterParser,
  InvalidCredentialsError,
  NoSuchObjectError,
  OrFilter,
  ResultCodeError,
  type SearchOptions,
  SizeLimitExceededError,
} from 'ldapts';
import { z } from 'zod';
import type { IdentityBackend, IdentityGroup, IdentityUser, UserRef } from './identity-backend.js';
import {
  type DirectoryEntry,
  decodeBinaryId,
  decodeDirectoryId,
  groupAttributes,
  groupFromEntry,
  isDnUnder,
  type LdapMapping,
  openLdapMapping,
  userAttributes,
  userFromEntry,
  valuesOf,
} from './ldap-mapping.js';

export { activeDirectoryMapping, type LdapMapping, openLdapMapping } from './ldap-mapping.js';

/** Longest login name or password looked up; longer ones cannot match and are refused unsent. */
const MAX_NAME_LENGTH = 1024;
const MAX_PASSWORD_LENGTH = 4096;
/** Concurrent base searches when resolving member / memberOf DNs. */
const DN_LOOKUP_CONCURRENCY = 8;
/** Ids per OR filter when members are ids. */
const IDS_PER_QUERY = 50;

const attributeName = z
  .string()
  .regex(/^(?:[A-Za-z][A-Za-z0-9-]{0,127}|\d+(?:\.\d+)+)$/, 'must be an LDAP attribute name or OID');
const objectClassName = attributeName;
const dnText = z
  .string()
  .min(3, 'must be a DN')
  .max(2048)
  .refine((v) => v.includes('=') && !v.includes('\0'), 'must be a DN');
const rawFilter = z
  .string()
  .max(4096)
  .refine((v) => {
    try {
      FilterParser.parseString(v);
      return true;
    } catch {
      return false;
    }
  }, 'must be an RFC 4515 filter');

/** The options schema (zod); {@link LdapIdentityBackend} validates its options with it. */
export const ldapBackendOptionsSchema = z
  .object({
    /** Keystone `url`: `ldap://host:port` or `ldaps://host:port` (no credentials, no path). */
    url: z
      .string()
      .max(2048)
      .refine((v) => {
        try {
          const u = new URL(v);
          return (
            (u.protocol === 'ldap:' || u.protocol === 'ldaps:') &&
            u.hostname !== '' &&
            u.username === '' &&
            u.password === '' &&
            (u.pathname === '' || u.pathname === '/') &&
            u.search === '' &&
            u.hash === ''
          );
        } catch {
          return false;
        }
      }, 'must be ldap://host[:port] or ldaps://host[:port]'),
    /** Keystone `user`: the service account's DN; unset: anonymous searches. */
    bindDn: dnText.optional(),
    /** Keystone `password`: the service account's password (never logged, never in errors). */
    bindPassword: z.string().min(1, 'must not be empty').max(MAX_PASSWORD_LENGTH).optional(),
    /** Keystone `user_tree_dn`: where users live. */
    userTreeDn: dnText,
    /** Keystone `group_tree_dn`: where groups live. */
    groupTreeDn: dnText,
    /** Keystone `query_scope`: `one` (children of the tree DNs, Keystone's default) or `sub`. */
    queryScope: z.enum(['one', 'sub']).default('one'),
    /** Keystone `user_filter`: an extra filter (operator-written) ANDed to user searches. */
    userFilter: rawFilter.optional(),
    /** Keystone `group_filter`: an extra filter ANDed to group searches. */
    groupFilter: rawFilter.optional(),
    userObjectClass: objectClassName.default(openLdapMapping.userObjectClass),
    userIdAttribute: attributeName.default(openLdapMapping.userIdAttribute),
    userIdAttributeIsBinary: z.boolean().default(false),
    userNameAttribute: attributeName.default(openLdapMapping.userNameAttribute),
    userMailAttribute: attributeName.default(openLdapMapping.userMailAttribute),
    userDescriptionAttribute: attributeName.default(openLdapMapping.userDescriptionAttribute),
    userDefaultProjectIdAttribute: attributeName.optional(),
    userEnabledAttribute: attributeName.optional(),
    userEnabledMask: z.number().int().min(0).max(0x7fffffff).default(0),
    userEnabledInvert: z.boolean().default(false),
    userEnabledDefault: z.string().max(64).default(openLdapMapping.userEnabledDefault),
    userMemberOfAttribute: attributeName.optional(),
    groupObjectClass: objectClassName.default(openLdapMapping.groupObjectClass),
    groupIdAttribute: attributeName.default(openLdapMapping.groupIdAttribute),
    groupNameAttribute: attributeName.default(openLdapMapping.groupNameAttribute),
    groupDescriptionAttribute: attributeName.default(openLdapMapping.groupDescriptionAttribute),
    groupMemberAttribute: attributeName.default(openLdapMapping.groupMemberAttribute),
    groupMembersAreIds: z.boolean().default(false),
    /** The Keystone domain the directory's users and groups belong to (default `default`). */
    domainId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a domain id')
      .default('default'),
    /** Keystone `page_size`: entries per page of a list (RFC 2696 paging); 0 turns paging off. */
    pageSize: z.number().int().min(0).max(10_000).default(500),
    /** Keystone `list_limit`: most entries a list returns (0: no limit). */
    listLimit: z.number().int().min(0).default(10_000),
    /** Keystone `connection_timeout`, in ms: how long a TCP (and TLS) connect may take. */
    connectTimeoutMs: z.number().int().min(1).max(600_000).default(5_000),
    /** How long one directory operation may take, in ms (the connection is dropped after it). */
    timeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.bindDn !== undefined && o.bindPassword === undefined)
      ctx.addIssue({ code: 'custom', path: ['bindPassword'], message: 'is required with bindDn' });
    if (o.bindDn === undefined && o.bindPassword !== undefined)
      ctx.addIssue({ code: 'custom', path: ['bindDn'], message: 'is required with bindPassword' });
  });

/**
 * Options of {@link LdapIdentityBackend}, named after Keystone's `[ldap]` options in camelCase
 * (`user_tree_dn` is `userTreeDn`); validated by {@link ldapBackendOptionsSchema}. The mapping
 * fields ({@link LdapMapping}: object classes, attribute names, enabled flag, membership) default
 * to {@link openLdapMapping}; spread {@link activeDirectoryMapping} for Active Directory:
 * `{ ...activeDirectoryMapping, url, bindDn, bindPassword, userTreeDn, groupTreeDn, queryScope: 'sub' }`.
 */
export interface LdapBackendOptions extends Partial<LdapMapping> {
  /** Keystone `url`: `ldap://host[:port]` or `ldaps://host[:port]` (no credentials, no path). */
  readonly url: string;
  /** Keystone `user`: the service account's DN; unset (with no password): anonymous searches. */
  readonly bindDn?: string | undefined;
  /**
   * Keystone `password`: the service account's password; required with `bindDn`, never empty
   * (that would be an unauthenticated bind). Never logged, never in an error.
   */
  readonly bindPassword?: string | undefined;
  /** Keystone `user_tree_dn`: where users live. */
  readonly userTreeDn: string;
  /** Keystone `group_tree_dn`: where groups live. */
  readonly groupTreeDn: string;
  /** Keystone `query_scope`: `one` (children of the tree DNs; Keystone's default) or `sub`. */
  readonly queryScope?: 'one' | 'sub' | undefined;
  /** Keystone `user_filter`: an RFC 4515 filter (written by the operator) ANDed to user searches. */
  readonly userFilter?: string | undefined;
  /** Keystone `group_filter`: an RFC 4515 filter ANDed to group searches. */
  readonly groupFilter?: string | undefined;
  /** The Keystone domain the directory's users and groups belong to (default `default`). */
  readonly domainId?: string | undefined;
  /** Keystone `page_size`: entries per page of a list (RFC 2696 paging; default 500); 0: no paging. */
  readonly pageSize?: number | undefined;
  /** Keystone `list_limit`: most entries a list returns (default 10,000; 0: no limit). */
  readonly listLimit?: number | undefined;
  /** Keystone `connection_timeout`, in ms (default 5,000): how long a TCP (and TLS) connect may take. */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * How long one directory operation may take, in ms (default 10,000); its connection is dropped
   * then. A search cut this way is retried once, so a call can take up to twice as long.
   */
  readonly timeoutMs?: number | undefined;
}

type SchemaKeys = keyof z.input<typeof ldapBackendOptionsSchema>;
/** Compile-time check: the interface and the schema name the same options. */
const sameKeys: [
  Exclude<SchemaKeys, keyof LdapBackendOptions>,
  Exclude<keyof LdapBackendOptions, SchemaKeys>,
] extends [never, never]
  ? true
  : never = true;
void sameKeys;

type ResolvedOptions = z.output<typeof ldapBackendOptionsSchema>;

/** Why the directory could not answer. */
export type LdapUnavailableReason =
  | 'refused'
  | 'timeout'
  | 'connection_lost'
  | 'service_bind_rejected'
  | 'directory_error'
  | 'closed';

/** Details of an {@link LdapUnavailableError}: nothing secret (no password, no bind DN). */
export interface LdapUnavailableDetails {
  readonly backend: 'ldap';
  /** The backend operation (`authenticate`, `getUser`, `listUsers`, ...). */
  readonly operation: string;
  readonly reason: LdapUnavailableReason;
  /** The LDAP result code when the server answered with an error (e.g. 49, 53). */
  readonly resultCode?: number;
}

/**
 * The directory is down, refused the connection, timed out, rejected the service account or
 * answered with an unexpected error. Code `NLFS_STORAGE` (the directory is the identity store),
 * which the API answers with 503. Message, details and `cause` never contain the bind password
 * or a user's password: the cause is a redacted copy of the ldapts error (name, message, result
 * code), never the ldapts error itself.
 */
export class LdapUnavailableError extends NovaError<LdapUnavailableDetails> {
  constructor(details: LdapUnavailableDetails, options?: { cause?: unknown }) {
    super(
      ErrorCode.Storage,
      `the LDAP directory is unavailable (${details.operation}: ${details.reason})`,
      details,
      options,
    );
  }
}

/**
 * A read-only {@link IdentityBackend} over an LDAP directory (OpenLDAP, Active Directory),
 * Keystone's `[identity] driver = ldap`.
 *
 * - Users and groups are searched with one service connection (bound as `bindDn`, or anonymous),
 *   kept open and reused; when the server drops it, the next call connects and binds again, and a
 *   call whose connection dies mid-way is retried once on a fresh one.
 * - {@link LdapIdentityBackend.authenticate} finds the user with the service connection, then binds as the user's DN
 *   with the password on a separate short-lived connection. Empty passwords are refused before any
 *   bind (an LDAP simple bind with a DN and no password is an *unauthenticated* bind that many
 *   servers accept as anonymous).
 * - Every user-supplied value travels in ldapts filter objects (`EqualityFilter`), BER-encoded as
 *   an octet string: never parsed as filter syntax, so `*`, `)(uid=*`, `\` and NUL match only
 *   themselves (RFC 4515 escaping is what `toString()` of those filters shows). DNs are only ever
 *   ones the directory returned.
 * - Ids are the id attribute's values (see `encodeDirectoryId` in `ldap-mapping.ts` for values that
 *   are not URL-safe).
 * - Failures of the directory reject with {@link LdapUnavailableError}; invalid options throw a
 *   `ConfigurationError` whose `details.setting` is `ldap.<field>`.
 *
 * Verified for real (ldap-backend.test.ts, OpenLDAP slapd with the memberof overlay): the
 * OpenLDAP mapping, the Active Directory mapping's user side and `memberOf` (on AD-style
 * attributes in an OpenLDAP tree), `entryUUID` ids, paging, drops, outages and timeouts. Not
 * verified: a real Active Directory, `objectGUID` ids against a server, `groupMembersAreIds`
 * against a server (the test tree has no posixGroup), `ldaps://`. Not implemented: StartTLS
 * (Keystone `use_tls`) and CA options, referral chasing (references are ignored), nested group
 * expansion, AD ranged `member` retrieval, Keystone's `user_enabled_emulation`.
 */
export class LdapIdentityBackend implements IdentityBackend {
  readonly kind = 'ldap';
  readonly writable = false;
  /** The Keystone domain of every user and group of this directory. */
  readonly domainId: string;
  readonly #options: ResolvedOptions;
  readonly #mapping: LdapMapping;
  readonly #secrets: string[];
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #closed = false;

  /** @throws ConfigurationError naming the field (`details.setting`, e.g. `ldap.userTreeDn`). */
  constructor(options: LdapBackendOptions) {
    const parsed = ldapBackendOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const keys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
      const field = [...(issue?.path.map(String) ?? []), ...keys.slice(0, 1)].join('.') || '(options)';
      throw new ConfigurationError(
        `ldap.${field}`,
        `invalid LDAP option ${field}: ${issue?.message ?? 'invalid'}`,
      );
    }
    this.#options = parsed.data;
    this.#mapping = parsed.data;
    this.domainId = parsed.data.domainId;
    this.#secrets = parsed.data.bindPassword === undefined ? [] : [parsed.data.bindPassword];
  }

  async authenticate(ref: UserRef, password: string): Promise<IdentityUser | undefined> {
    if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD_LENGTH)
      return undefined;
    const found = await this.#findUser('authenticate', ref);
    if (found === undefined || !found.user.enabled) return undefined;
    const client = this.#newClient();
    try {
      await client.bind(found.entry.dn, password);
      return found.user;
    } catch (e) {
      // 49 invalidCredentials, and whatever else the server says about this bind (53
      // unwillingToPerform, 19 constraintViolation of a password policy): not authenticated.
      if (e instanceof ResultCodeError) return undefined;
      throw this.#unavailable('authenticate', e, [password]);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  async getUser(ref: UserRef): Promise<IdentityUser | undefined> {
    return (await this.#findUser('getUser', ref))?.user;
  }

  async listUsers(
    filter: { readonly name?: string; readonly domainId?: string } = {},
  ): Promise<IdentityUser[]> {
    if (filter.domainId !== undefined && filter.domainId !== this.domainId) return [];
    const clauses: Filter[] = [];
    if (filter.name !== undefined) {
      if (!isLookupText(filter.name)) return [];
      clauses.push(eq(this.#mapping.userNameAttribute, filter.name));
    }
    const entries = await this.#list(
      'listUsers',
      this.#options.userTreeDn,
      this.#userFilter(clauses),
      this.#userAttrs(),
    );
    return entries.flatMap((e) => userFromEntry(this.#mapping, e, this.domainId) ?? []);
  }

  async getGroup(id: string): Promise<IdentityGroup | undefined> {
    return (await this.#findGroup('getGroup', id, []))?.group;
  }

  async listGroups(
    filter: { readonly name?: string; readonly domainId?: string } = {},
  ): Promise<IdentityGroup[]> {
    if (filter.domainId !== undefined && filter.domainId !== this.domainId) return [];
    const clauses: Filter[] = [];
    if (filter.name !== undefined) {
      if (!isLookupText(filter.name)) return [];
      clauses.push(eq(this.#mapping.groupNameAttribute, filter.name));
    }
    const entries = await this.#list(
      'listGroups',
      this.#options.groupTreeDn,
      this.#groupFilter(clauses),
      groupAttributes(this.#mapping),
    );
    return entries.flatMap((e) => groupFromEntry(this.#mapping, e, this.domainId) ?? []);
  }

  /**
   * With `userMemberOfAttribute` (AD's and the OpenLDAP overlay's `memberOf`): the groups whose
   * DNs the user's entry lists (those under `groupTreeDn` and of `groupObjectClass`). Without:
   * the groups whose member attribute holds the user's DN (or id, with `groupMembersAreIds`).
   * Nested groups are not expanded. Unknown user: `[]`. Sorted by name.
   */
  async groupsOf(userId: string): Promise<IdentityGroup[]> {
    const memberOf = this.#mapping.userMemberOfAttribute;
    const found = await this.#findUser('groupsOf', { id: userId }, memberOf === undefined ? [] : [memberOf]);
    if (found === undefined) return [];
    let groups: IdentityGroup[];
    if (memberOf !== undefined) {
      const dns = valuesOf(found.entry, memberOf).filter((dn) => isDnUnder(dn, this.#options.groupTreeDn));
      const entries = await this.#entriesAt(
        'groupsOf',
        dns,
        this.#groupFilter([]),
        groupAttributes(this.#mapping),
      );
      groups = entries.flatMap((e) => groupFromEntry(this.#mapping, e, this.domainId) ?? []);
    } else {
      const member = this.#mapping.groupMembersAreIds ? found.idValue : found.entry.dn;
      const entries = await this.#list(
        'groupsOf',
        this.#options.groupTreeDn,
        this.#groupFilter([eq(this.#mapping.groupMemberAttribute, member)]),
        groupAttributes(this.#mapping),
      );
      groups = entries.flatMap((e) => groupFromEntry(this.#mapping, e, this.domainId) ?? []);
    }
    return groups.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The users the group's member attribute lists (DNs under `userTreeDn` of `userObjectClass`, or
   * ids with `groupMembersAreIds`); members that are not such users (nested groups, dangling DNs)
   * are skipped. Unknown group: `[]`. Sorted by name.
   */
  async membersOf(groupId: string): Promise<IdentityUser[]> {
    const memberAttr = this.#mapping.groupMemberAttribute;
    const found = await this.#findGroup('membersOf', groupId, [memberAttr]);
    if (found === undefined) return [];
    const values = valuesOf(found.entry, memberAttr);
    let entries: DirectoryEntry[];
    if (this.#mapping.groupMembersAreIds) {
      entries = [];
      const ids = values.filter(isLookupText);
      for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
        const chunk = ids.slice(i, i + IDS_PER_QUERY).map((v) => eq(this.#mapping.userIdAttribute, v));
        const any = chunk.length === 1 ? chunk : [new OrFilter({ filters: chunk })];
        entries.push(
          ...(await this.#list(
            'membersOf',
            this.#options.userTreeDn,
            this.#userFilter(any),
            this.#userAttrs(),
          )),
        );
      }
    } else {
      const dns = values.filter((dn) => isDnUnder(dn, this.#options.userTreeDn));
      entries = await this.#entriesAt('membersOf', dns, this.#userFilter([]), this.#userAttrs());
    }
    const users = entries.flatMap((e) => userFromEntry(this.#mapping, e, this.domainId) ?? []);
    return users.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Unbinds the service connection. Idempotent; later calls reject with {@link LdapUnavailableError}. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#connecting;
    this.#connecting = undefined;
    const client = this.#client ?? (await pending?.catch(() => undefined));
    this.#client = undefined;
    await client?.unbind().catch(() => undefined);
  }

  // --- lookups ---------------------------------------------------------------------------------

  async #findUser(
    operation: string,
    ref: UserRef,
    extraAttributes: readonly string[] = [],
  ): Promise<{ entry: DirectoryEntry; user: IdentityUser; idValue: string } | undefined> {
    const m = this.#mapping;
    let clause: Filter;
    if ('id' in ref) {
      if (typeof ref.id !== 'string') return undefined;
      const value = m.userIdAttributeIsBinary ? decodeBinaryId(ref.id) : decodeDirectoryId(ref.id);
      if (value === undefined) return undefined;
      clause = eq(m.userIdAttribute, value);
    } else {
      if (ref.domainId !== this.domainId || !isLookupText(ref.name)) return undefined;
      clause = eq(m.userNameAttribute, ref.name);
    }
    const attributes = [...this.#userAttrs(), ...extraAttributes];
    const entry = await this.#single(
      operation,
      this.#options.userTreeDn,
      this.#userFilter([clause]),
      attributes,
    );
    if (entry === undefined) return undefined;
    const user = userFromEntry(m, entry, this.domainId);
    if (user === undefined) return undefined;
    // the raw id attribute value (for memberUid-style membership); for binary ids, unused
    const idValue = valuesOf(entry, m.userIdAttribute)[0] ?? '';
    return { entry, user, idValue };
  }

  async #findGroup(
    operation: string,
    id: string,
    extraAttributes: readonly string[],
  ): Promise<{ entry: DirectoryEntry; group: IdentityGroup } | undefined> {
    if (typeof id !== 'string') return undefined;
    const value = decodeDirectoryId(id);
    if (value === undefined) return undefined;
    const filter = this.#groupFilter([eq(this.#mapping.groupIdAttribute, value)]);
    const attributes = [...groupAttributes(this.#mapping), ...extraAttributes];
    const entry = await this.#single(operation, this.#options.groupTreeDn, filter, attributes);
    if (entry === undefined) return undefined;
    const group = groupFromEntry(this.#mapping, entry, this.domainId);
    return group === undefined ? undefined : { entry, group };
  }

  #userAttrs(): string[] {
    const attrs = userAttributes(this.#mapping);
    return attrs;
  }

  #userFilter(clauses: readonly Filter[]): Filter {
    return this.#and(this.#mapping.userObjectClass, this.#options.userFilter, clauses);
  }

  #groupFilter(clauses: readonly Filter[]): Filter {
    return this.#and(this.#mapping.groupObjectClass, this.#options.groupFilter, clauses);
  }

  #and(objectClass: string, extra: string | undefined, clauses: readonly Filter[]): Filter {
    const filters: Filter[] = [eq('objectClass', objectClass), ...clauses];
    if (extra !== undefined) filters.push(FilterParser.parseString(extra));
    return new AndFilter({ filters });
  }

  #searchOptions(filter: Filter, attributes: readonly string[]): SearchOptions {
    const options: SearchOptions = {
      scope: this.#options.queryScope,
      filter,
      attributes: [...attributes],
      timeLimit: Math.ceil(this.#options.timeoutMs / 1000),
    };
    if (this.#mapping.userIdAttributeIsBinary)
      options.explicitBufferAttributes = [this.#mapping.userIdAttribute];
    return options;
  }

  /** The one entry matching; `undefined` when none, or more than one (ambiguous: refused). */
  async #single(
    operation: string,
    base: string,
    filter: Filter,
    attributes: readonly string[],
  ): Promise<DirectoryEntry | undefined> {
    const entries = await this.#run(operation, async (client) => {
      try {
        return (await client.search(base, { ...this.#searchOptions(filter, attributes), sizeLimit: 2 }))
          .searchEntries;
      } catch (e) {
        if (e instanceof SizeLimitExceededError) return [];
        if (e instanceof NoSuchObjectError) return [];
        throw e;
      }
    });
    return entries.length === 1 ? (entries[0] as DirectoryEntry) : undefined;
  }

  /** Every entry matching, paged, at most `listLimit`. A missing tree DN answers `[]`. */
  async #list(
    operation: string,
    base: string,
    filter: Filter,
    attributes: readonly string[],
  ): Promise<DirectoryEntry[]> {
    const { pageSize, listLimit } = this.#options;
    return this.#run(operation, async (client) => {
      const out: DirectoryEntry[] = [];
      const options = this.#searchOptions(filter, attributes);
      try {
        if (pageSize === 0) {
          const result = await client.search(
            base,
            listLimit === 0 ? options : { ...options, sizeLimit: listLimit },
          );
          out.push(...(result.searchEntries as DirectoryEntry[]));
        } else {
          for await (const page of client.searchPaginated(base, { ...options, paged: { pageSize } })) {
            out.push(...(page.searchEntries as DirectoryEntry[]));
            if (listLimit !== 0 && out.length >= listLimit) break;
          }
        }
      } catch (e) {
        if (e instanceof NoSuchObjectError) return [];
        if (e instanceof SizeLimitExceededError) return out;
        throw e;
      }
      return listLimit === 0 ? out : out.slice(0, listLimit);
    });
  }

  /** The entries at these DNs that match `filter` (base searches; missing DNs skipped). */
  async #entriesAt(
    operation: string,
    dns: readonly string[],
    filter: Filter,
    attributes: readonly string[],
  ): Promise<DirectoryEntry[]> {
    const unique = [...new Set(dns)];
    return this.#run(operation, async (client) => {
      const out: (DirectoryEntry | undefined)[] = new Array(unique.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < unique.length) {
          const i = next++;
          const dn = unique[i] as string;
          try {
            const result = await client.search(dn, {
              ...this.#searchOptions(filter, attributes),
              scope: 'base',
            });
            out[i] = result.searchEntries[0] as DirectoryEntry | undefined;
          } catch (e) {
            if (e instanceof NoSuchObjectError) continue;
            throw e;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(DN_LOOKUP_CONCURRENCY, unique.length) }, worker));
      return out.filter((e): e is DirectoryEntry => e !== undefined);
    });
  }

  // --- connection ------------------------------------------------------------------------------

  /**
   * Runs `fn` on the bound service connection. A failure that is not an LDAP result (the
   * connection closed or timed out mid-way) is retried once on a new connection; the second
   * failure, a failed connect or bind, and unexpected LDAP results reject with
   * {@link LdapUnavailableError}.
   */
  async #run<T>(operation: string, fn: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.#service(operation);
      try {
        return await fn(client);
      } catch (e) {
        if (e instanceof ResultCodeError || attempt > 0) throw this.#unavailable(operation, e);
        this.#drop(client);
      }
    }
  }

  async #service(operation: string): Promise<Client> {
    if (this.#closed) throw new LdapUnavailableError({ backend: 'ldap', operation, reason: 'closed' });
    if (this.#client?.isBound) return this.#client;
    if (this.#client !== undefined) this.#drop(this.#client);
    this.#connecting ??= this.#bindService().finally(() => {
      this.#connecting = undefined;
    });
    try {
      return await this.#connecting;
    } catch (e) {
      throw this.#unavailable(operation, e, [], true);
    }
  }

  async #bindService(): Promise<Client> {
    const client = this.#newClient();
    try {
      await client.bind(this.#options.bindDn ?? '', this.#options.bindPassword ?? '');
    } catch (e) {
      await client.unbind().catch(() => undefined);
      throw e;
    }
    if (this.#closed) {
      await client.unbind().catch(() => undefined);
      throw new Error('closed');
    }
    this.#client = client;
    return client;
  }

  #drop(client: Client): void {
    if (this.#client === client) this.#client = undefined;
    void client.unbind().catch(() => undefined);
  }

  #newClient(): Client {
    return new Client({
      url: this.#options.url,
      connectTimeout: this.#options.connectTimeoutMs,
      timeout: this.#options.timeoutMs,
    });
  }

  #unavailable(
    operation: string,
    error: unknown,
    secrets: readonly string[] = [],
    binding = false,
  ): LdapUnavailableError {
    if (error instanceof LdapUnavailableError) return error;
    const resultCode = error instanceof ResultCodeError ? error.code : undefined;
    let reason: LdapUnavailableReason;
    if (binding && error instanceof InvalidCredentialsError) reason = 'service_bind_rejected';
    else if (resultCode !== undefined) reason = 'directory_error';
    else reason = reasonOf(error);
    const details: LdapUnavailableDetails =
      resultCode === undefined
        ? { backend: 'ldap', operation, reason }
        : { backend: 'ldap', operation, reason, resultCode };
    return new LdapUnavailableError(details, { cause: redacted(error, [...this.#secrets, ...secrets]) });
  }
}

function eq(attribute: string, value: string | Buffer): EqualityFilter {
  return new EqualityFilter({ attribute, value });
}

/** A name or id value worth sending to the directory (non-empty, bounded). */
function isLookupText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_NAME_LENGTH;
}

function reasonOf(error: unknown): LdapUnavailableReason {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : '';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') return 'refused';
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(message)) return 'timeout';
  return 'connection_lost';
}

/** A copy of an error safe to keep as a cause: name, message and code, secrets replaced. */
function redacted(error: unknown, secrets: readonly string[]): Error {
  const scrub = (text: string): string =>
    secrets.reduce((t, s) => (s.length === 0 ? t : t.split(s).join('[redacted]')), text);
  const source = error instanceof Error ? error : new Error(String(error));
  const copy = new Error(scrub(source.message));
  copy.name = source.name;
  const code = (source as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') (copy as { code?: unknown }).code = code;
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}
