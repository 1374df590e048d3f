/**
 * The identity service's tables (all prefixed `identity_`), as Kysely sees them. Times are epoch
 * milliseconds; booleans are 0/1 integers so one schema fits SQLite and PostgreSQL.
 */
export interface IdentityTables {
  identity_domain: DomainRow;
  identity_project: ProjectRow;
  identity_user: UserRow;
  identity_group: GroupRow;
  identity_group_member: GroupMemberRow;
  identity_role: RoleRow;
  identity_assignment: AssignmentRow;
  identity_signing_key: SigningKeyRow;
  identity_revocation: RevocationRow;
}

/** A domain (`default` always exists). */
export interface DomainRow {
  id: string;
  name: string;
  description: string;
  enabled: number;
}

/** A project, owned by a domain; names are unique within the domain. */
export interface ProjectRow {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: number;
  created_at: number;
}

/** A SQL-backend user; `password_hash` is an scrypt hash string (never the password). */
export interface UserRow {
  id: string;
  name: string;
  domain_id: string;
  email: string | null;
  description: string | null;
  default_project_id: string | null;
  enabled: number;
  password_hash: string | null;
  created_at: number;
}

/** A SQL-backend group. */
export interface GroupRow {
  id: string;
  name: string;
  domain_id: string;
  description: string;
}

/** A user's membership of a SQL group. */
export interface GroupMemberRow {
  group_id: string;
  user_id: string;
}

/** A role (global: `domain_id` is null). */
export interface RoleRow {
  id: string;
  name: string;
  description: string;
}

/**
 * One role grant: an actor (a user or a group) holds a role on a target (a project, a domain or
 * the system, whose target id is `all`). Kept in SQL whatever the identity backend.
 */
export interface AssignmentRow {
  actor_type: 'user' | 'group';
  actor_id: string;
  target_type: 'project' | 'domain' | 'system';
  target_id: string;
  role_id: string;
}

/** A token signing key: `primary` signs, `secondary` still validates, `retired` validates nothing. */
export interface SigningKeyRow {
  id: string;
  secret: string;
  state: 'primary' | 'secondary' | 'retired';
  created_at: number;
}

/**
 * A revocation: every token with audit id `value` (`kind` `audit`), or every token of user `value`
 * issued at or before `revoked_at` (`kind` `user`), is invalid until `expires_at`.
 */
export interface RevocationRow {
  id: string;
  kind: 'audit' | 'user';
  value: string;
  revoked_at: number;
  expires_at: number;
}
