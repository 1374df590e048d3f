import type { IdentityGroup, IdentityUser } from './identity-backend.js';

/**
 * How a directory's entries map to users and groups: object classes, attribute names, the
 * enabled flag and group membership. The names mirror Keystone's `[ldap]` options
 * (`user_objectclass`, `user_id_attribute`, ...), in camelCase. Attribute names are matched
 * case-insensitively, as LDAP does.
 */
export interface LdapMapping {
  /** Keystone `user_objectclass`: the object class of user entries (`inetOrgPerson`, `person`). */
  readonly userObjectClass: string;
  /**
   * Keystone `user_id_attribute`: the attribute whose value is the user's id (`uid`,
   * `sAMAccountName`, `entryUUID`, `objectGUID`). See {@link encodeDirectoryId} for how values that
   * are not URL-safe become ids.
   */
  readonly userIdAttribute: string;
  /**
   * Whether the id attribute holds bytes (Active Directory's `objectGUID`): the id is then the
   * lowercase hex of the bytes. Keystone has no such option (it decodes values as UTF-8).
   */
  readonly userIdAttributeIsBinary: boolean;
  /** Keystone `user_name_attribute`: the login name (`uid`, `sAMAccountName`). */
  readonly userNameAttribute: string;
  /** Keystone `user_mail_attribute`. */
  readonly userMailAttribute: string;
  /** Keystone `user_description_attribute`. */
  readonly userDescriptionAttribute: string;
  /** Keystone `user_default_project_id_attribute`; unset: users have no default project. */
  readonly userDefaultProjectIdAttribute?: string | undefined;
  /** Keystone `user_enabled_attribute`; unset: every user is enabled. */
  readonly userEnabledAttribute?: string | undefined;
  /**
   * Keystone `user_enabled_mask`: when not 0, the enabled attribute is an integer and the user is
   * enabled unless all the mask's bits are set in it (Active Directory: `userAccountControl` with
   * mask 2, ACCOUNTDISABLE). The invert option does not apply then, as in Keystone.
   */
  readonly userEnabledMask: number;
  /**
   * Keystone `user_enabled_invert`: the (boolean) enabled attribute says *disabled* when true
   * (e.g. `nsAccountLock`). Ignored when a mask is set.
   */
  readonly userEnabledInvert: boolean;
  /**
   * Keystone `user_enabled_default`: the value assumed when an entry lacks the enabled attribute
   * (`TRUE`; `512` for Active Directory).
   */
  readonly userEnabledDefault: string;
  /**
   * Keystone `user_member_of_attribute` (used by Keystone with `group_members_are_ids=false` and
   * AD's `memberOf`): an attribute on user entries listing their groups' DNs. When set,
   * the backend's `groupsOf` reads it instead of searching the group tree.
   */
  readonly userMemberOfAttribute?: string | undefined;
  /** Keystone `group_objectclass` (`groupOfNames`, `group`, `posixGroup`). */
  readonly groupObjectClass: string;
  /** Keystone `group_id_attribute`. */
  readonly groupIdAttribute: string;
  /** Keystone `group_name_attribute`. */
  readonly groupNameAttribute: string;
  /** Keystone `group_desc_attribute`. */
  readonly groupDescriptionAttribute: string;
  /** Keystone `group_member_attribute`: `member`, `uniqueMember` (DNs) or `memberUid` (ids). */
  readonly groupMemberAttribute: string;
  /**
   * Keystone `group_members_are_ids`: the member attribute holds user ids (the values of the
   * user id attribute, as in posixGroup's `memberUid`) rather than DNs.
   */
  readonly groupMembersAreIds: boolean;
}

/**
 * OpenLDAP with the standard schemas: `inetOrgPerson` users named by `uid`, `groupOfNames` groups
 * with `member` DNs. No enabled attribute (inetOrgPerson has none): every user is enabled, unless
 * the options name one. No `memberOf` (it needs the memberof overlay; set
 * `userMemberOfAttribute: 'memberOf'` when the server has it).
 */
export const openLdapMapping: LdapMapping = Object.freeze({
  userObjectClass: 'inetOrgPerson',
  userIdAttribute: 'uid',
  userIdAttributeIsBinary: false,
  userNameAttribute: 'uid',
  userMailAttribute: 'mail',
  userDescriptionAttribute: 'description',
  userEnabledMask: 0,
  userEnabledInvert: false,
  userEnabledDefault: 'TRUE',
  groupObjectClass: 'groupOfNames',
  groupIdAttribute: 'cn',
  groupNameAttribute: 'cn',
  groupDescriptionAttribute: 'description',
  groupMemberAttribute: 'member',
  groupMembersAreIds: false,
});

/**
 * Active Directory: `person` users with `sAMAccountName` as id and login name, enabled unless
 * `userAccountControl` has bit 2 (ACCOUNTDISABLE) set (default 512, NORMAL_ACCOUNT), `group`
 * groups with `member` DNs, and the user's `memberOf` for their groups (Keystone's documented AD
 * settings, with `sAMAccountName` rather than `cn` as id so that ids are login names).
 *
 * What was verified for real: this mapping's user side (object class `person`, `sAMAccountName`,
 * `userAccountControl` with mask 2, `memberOf`) against OpenLDAP entries carrying those AD
 * attributes (the test tree of `scripts/services/start-slapd.sh`); the group object class
 * `group` only with `groupOfNames` substituted (the test tree has no AD schema), and never
 * against a real Active Directory (no `objectGUID`, no referrals, no ranged `member` retrieval
 * for groups with more than 1,500 members). `person` also matches AD computer accounts; add a
 * `userFilter` such as `(!(objectClass=computer))` if that matters.
 */
export const activeDirectoryMapping: LdapMapping = Object.freeze({
  userObjectClass: 'person',
  userIdAttribute: 'sAMAccountName',
  userIdAttributeIsBinary: false,
  userNameAttribute: 'sAMAccountName',
  userMailAttribute: 'mail',
  userDescriptionAttribute: 'description',
  userEnabledAttribute: 'userAccountControl',
  userEnabledMask: 2,
  userEnabledInvert: false,
  userEnabledDefault: '512',
  userMemberOfAttribute: 'memberOf',
  groupObjectClass: 'group',
  groupIdAttribute: 'cn',
  groupNameAttribute: 'cn',
  groupDescriptionAttribute: 'description',
  groupMemberAttribute: 'member',
  groupMembersAreIds: false,
});

/** An entry as ldapts returns it: its DN and attribute values (strings, or Buffers when asked). */
export interface DirectoryEntry {
  readonly dn: string;
  readonly [attribute: string]: Buffer | Buffer[] | string[] | string;
}

/** The values of an attribute (case-insensitive name), as strings; `[]` when absent. */
export function valuesOf(entry: DirectoryEntry, attribute: string): string[] {
  const raw = rawValuesOf(entry, attribute);
  return raw.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
}

/** The values of an attribute (case-insensitive name), as returned (strings or Buffers). */
export function rawValuesOf(entry: DirectoryEntry, attribute: string): (Buffer | string)[] {
  const wanted = attribute.toLowerCase();
  for (const key of Object.keys(entry)) {
    if (key === 'dn' || key.toLowerCase() !== wanted) continue;
    const v = entry[key];
    if (v === undefined) return [];
    return Array.isArray(v) ? v : [v];
  }
  return [];
}

/** The first value of an attribute, or `null`. */
export function firstValueOf(entry: DirectoryEntry, attribute: string): string | null {
  return valuesOf(entry, attribute)[0] ?? null;
}

/**
 * Whether a user is enabled, from the enabled attribute's value (`undefined`: the entry lacks
 * it) — Keystone's `UserApi._ldap_res_to_model` logic:
 * - no enabled attribute configured: enabled;
 * - a mask: enabled unless `(value & mask) === mask` (AD: 514 & 2 = 2, disabled; 512, enabled);
 *   a value that is not an integer counts as disabled (fail closed);
 * - otherwise a boolean (`TRUE`/`true`, anything else false), inverted when `userEnabledInvert`.
 */
export function isEnabled(mapping: LdapMapping, value: string | undefined): boolean {
  if (mapping.userEnabledAttribute === undefined) return true;
  const raw = (value ?? mapping.userEnabledDefault).trim();
  if (mapping.userEnabledMask !== 0) {
    if (!/^-?\d{1,10}$/.test(raw)) return false;
    const n = Number(raw);
    return (n & mapping.userEnabledMask) !== mapping.userEnabledMask;
  }
  const flag = raw.toLowerCase() === 'true';
  return mapping.userEnabledInvert ? !flag : flag;
}

/** Characters an attribute value may have to be used as an id unchanged (URL-safe, no `~`). */
const PLAIN_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Longest id accepted for decoding (a longer one was never issued). */
const MAX_ID_LENGTH = 1400;

/**
 * The public id of a directory value. A value made only of `A-Z a-z 0-9 . _ -` (1-64 characters)
 * is its own id, as in Keystone (`alice`, `7c73fe8e-829b-...`). Any other value (spaces, `@`,
 * non-ASCII, over 64 characters) becomes `~` followed by the base64url of its UTF-8 bytes, so
 * ids are always safe in URL paths and the encoding is reversible (no mapping table, unlike
 * Keystone's `id_mapping`); a plain id never starts with `~`, so the two forms cannot collide.
 */
export function encodeDirectoryId(value: string): string {
  return PLAIN_ID.test(value) ? value : `~${Buffer.from(value, 'utf8').toString('base64url')}`;
}

/**
 * The directory value behind an id from {@link encodeDirectoryId}, or `undefined` when `id` is not
 * one this encoding issues (then no directory lookup is needed: nothing has that id).
 */
export function decodeDirectoryId(id: string): string | undefined {
  if (id.length > MAX_ID_LENGTH) return undefined;
  if (PLAIN_ID.test(id)) return id;
  if (!id.startsWith('~')) return undefined;
  const body = id.slice(1);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const value = Buffer.from(body, 'base64url').toString('utf8');
  return encodeDirectoryId(value) === id ? value : undefined;
}

/** The id of a binary value (AD `objectGUID`): its lowercase hex. */
export function encodeBinaryId(value: Buffer): string {
  return value.toString('hex');
}

/** The bytes behind a binary id, or `undefined` when `id` is not lowercase hex (1-64 bytes). */
export function decodeBinaryId(id: string): Buffer | undefined {
  return /^(?:[0-9a-f]{2}){1,64}$/.test(id) ? Buffer.from(id, 'hex') : undefined;
}

/** The user id of an entry, or `undefined` when it lacks the id attribute. */
export function userIdOf(mapping: LdapMapping, entry: DirectoryEntry): string | undefined {
  const raw = rawValuesOf(entry, mapping.userIdAttribute)[0];
  if (raw === undefined) return undefined;
  if (mapping.userIdAttributeIsBinary) {
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'binary');
    return bytes.length === 0 ? undefined : encodeBinaryId(bytes);
  }
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw;
  return text === '' ? undefined : encodeDirectoryId(text);
}

/**
 * The user an entry describes, in `domainId`; `undefined` when the entry lacks the id or the
 * name attribute (such entries are skipped, as Keystone does).
 */
export function userFromEntry(
  mapping: LdapMapping,
  entry: DirectoryEntry,
  domainId: string,
): IdentityUser | undefined {
  const id = userIdOf(mapping, entry);
  const name = firstValueOf(entry, mapping.userNameAttribute);
  if (id === undefined || name === null || name === '') return undefined;
  const enabledAttr = mapping.userEnabledAttribute;
  const enabledValue =
    enabledAttr === undefined ? undefined : (firstValueOf(entry, enabledAttr) ?? undefined);
  const projectAttr = mapping.userDefaultProjectIdAttribute;
  return {
    id,
    name,
    domainId,
    enabled: isEnabled(mapping, enabledValue),
    email: firstValueOf(entry, mapping.userMailAttribute),
    description: firstValueOf(entry, mapping.userDescriptionAttribute),
    defaultProjectId: projectAttr === undefined ? null : firstValueOf(entry, projectAttr),
  };
}

/** The group an entry describes, in `domainId`; `undefined` when it lacks the id or the name. */
export function groupFromEntry(
  mapping: LdapMapping,
  entry: DirectoryEntry,
  domainId: string,
): IdentityGroup | undefined {
  const idValue = firstValueOf(entry, mapping.groupIdAttribute);
  const name = firstValueOf(entry, mapping.groupNameAttribute);
  if (idValue === null || idValue === '' || name === null || name === '') return undefined;
  return {
    id: encodeDirectoryId(idValue),
    name,
    domainId,
    description: firstValueOf(entry, mapping.groupDescriptionAttribute) ?? '',
  };
}

/** The attributes to request for user entries (only those; never `userPassword`). */
export function userAttributes(mapping: LdapMapping): string[] {
  return unique([
    mapping.userIdAttribute,
    mapping.userNameAttribute,
    mapping.userMailAttribute,
    mapping.userDescriptionAttribute,
    mapping.userEnabledAttribute,
    mapping.userDefaultProjectIdAttribute,
  ]);
}

/** The attributes to request for group entries (without the member list). */
export function groupAttributes(mapping: LdapMapping): string[] {
  return unique([mapping.groupIdAttribute, mapping.groupNameAttribute, mapping.groupDescriptionAttribute]);
}

function unique(names: readonly (string | undefined)[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    if (n === undefined || seen.has(n.toLowerCase())) continue;
    seen.add(n.toLowerCase());
    out.push(n);
  }
  return out;
}

/**
 * A DN in a comparable form: RDNs split on unescaped commas, spaces around them dropped,
 * lowercased. Good enough to tell whether a DN lies under a tree DN; not a full RFC 4514
 * canonicalisation (hex-escaped and `\,`-escaped forms of the same value compare different).
 */
export function comparableDn(dn: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === '\\' && i + 1 < dn.length) {
      current += c + dn[i + 1];
      i++;
    } else if (c === ',') {
      parts.push(current.trim().toLowerCase());
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current.trim().toLowerCase());
  return parts.map((p) => p.replace(/\s*=\s*/, '='));
}

/** Whether `dn` is `tree` or lies below it (compared with {@link comparableDn}). */
export function isDnUnder(dn: string, tree: string): boolean {
  const d = comparableDn(dn);
  const t = comparableDn(tree);
  if (t.length > d.length) return false;
  const offset = d.length - t.length;
  return t.every((rdn, i) => d[offset + i] === rdn);
}
