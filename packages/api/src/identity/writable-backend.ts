import type { IdentityBackend, IdentityGroup, IdentityUser } from './identity-backend.js';

/** A new user. `password` is the clear text, hashed by the backend and never kept as it is. */
export interface NewUser {
  readonly name: string;
  readonly domainId: string;
  readonly password?: string | null;
  readonly enabled?: boolean;
  readonly email?: string | null;
  readonly description?: string | null;
  readonly defaultProjectId?: string | null;
}

/** Changes to a user; absent fields stay as they are, `password: null` removes the password. */
export interface UserChanges {
  readonly name?: string;
  readonly enabled?: boolean;
  readonly email?: string | null;
  readonly description?: string | null;
  readonly defaultProjectId?: string | null;
  readonly password?: string | null;
}

/** A new group. */
export interface NewGroup {
  readonly name: string;
  readonly domainId: string;
  readonly description?: string;
}

/** Changes to a group. */
export interface GroupChanges {
  readonly name?: string;
  readonly description?: string;
}

/**
 * An identity backend whose users and groups the API may create, change and delete (the SQL
 * backend). A name already taken in the domain is refused with core's `DuplicateError`
 * (kind `user` or `group`).
 */
export interface WritableIdentityBackend extends IdentityBackend {
  readonly writable: true;
  createUser(user: NewUser): Promise<IdentityUser>;
  /** The changed user, or `undefined` if there is no such user. */
  updateUser(id: string, changes: UserChanges): Promise<IdentityUser | undefined>;
  /** Deletes the user and its group memberships; `false` if there was no such user. */
  deleteUser(id: string): Promise<boolean>;
  /**
   * Checks a user's current password regardless of whether the user is enabled (for a self
   * service password change); `false` for an unknown user or a wrong password.
   */
  checkPassword(id: string, password: string): Promise<boolean>;
  createGroup(group: NewGroup): Promise<IdentityGroup>;
  updateGroup(id: string, changes: GroupChanges): Promise<IdentityGroup | undefined>;
  /** Deletes the group and its memberships; `false` if there was no such group. */
  deleteGroup(id: string): Promise<boolean>;
  /** Adds a member (idempotent). */
  addMember(groupId: string, userId: string): Promise<void>;
  /** Removes a member; `false` if the user was not a member. */
  removeMember(groupId: string, userId: string): Promise<boolean>;
  isMember(groupId: string, userId: string): Promise<boolean>;
}

/** Whether a backend can write users and groups. */
export function isWritableBackend(backend: IdentityBackend): backend is WritableIdentityBackend {
  return backend.writable && typeof (backend as Partial<WritableIdentityBackend>).createUser === 'function';
}
