import { randomUUID } from 'node:crypto';
import { DuplicateError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { IdentityGroup, IdentityUser, UserRef } from './identity-backend.js';
import type { GroupRow, IdentityTables, UserRow } from './identity-tables.js';
import { PasswordHasher } from './password-hasher.js';
import type {
  GroupChanges,
  NewGroup,
  NewUser,
  UserChanges,
  WritableIdentityBackend,
} from './writable-backend.js';

/** Keystone-style ids: a random UUID as 32 hex digits. */
export function newIdentityId(): string {
  return randomUUID().replace(/-/g, '');
}

function userOf(row: UserRow): IdentityUser {
  return {
    id: row.id,
    name: row.name,
    domainId: row.domain_id,
    enabled: Number(row.enabled) === 1,
    email: row.email,
    description: row.description,
    defaultProjectId: row.default_project_id,
  };
}

function groupOf(row: GroupRow): IdentityGroup {
  return { id: row.id, name: row.name, domainId: row.domain_id, description: row.description };
}

/**
 * Users and groups in the `identity_user`, `identity_group` and `identity_group_member` tables.
 * Passwords are stored only as scrypt hashes ({@link PasswordHasher}); no method returns or logs
 * a password or its hash. Authentication of an unknown user still pays one scrypt, so timing does
 * not tell unknown users from wrong passwords.
 */
export class SqlIdentityBackend implements WritableIdentityBackend {
  readonly kind = 'sql';
  readonly writable = true as const;
  private readonly hasher: PasswordHasher;
  private readonly clock: () => number;
  private decoy: Promise<string> | undefined;

  constructor(
    private readonly db: Kysely<IdentityTables>,
    options: { readonly hasher?: PasswordHasher; readonly clock?: () => number } = {},
  ) {
    this.hasher = options.hasher ?? new PasswordHasher();
    this.clock = options.clock ?? Date.now;
  }

  async authenticate(ref: UserRef, password: string): Promise<IdentityUser | undefined> {
    const row = await this.userRow(ref);
    if (!row?.password_hash) {
      // the same work as a real check, so an unknown user takes as long as a wrong password
      this.decoy ??= this.hasher.hash(randomUUID());
      await this.hasher.verify(password, await this.decoy);
      return undefined;
    }
    const ok = await this.hasher.verify(password, row.password_hash);
    if (!ok || Number(row.enabled) !== 1) return undefined;
    return userOf(row);
  }

  async checkPassword(id: string, password: string): Promise<boolean> {
    const row = await this.userRow({ id });
    if (!row?.password_hash) return false;
    return this.hasher.verify(password, row.password_hash);
  }

  async getUser(ref: UserRef): Promise<IdentityUser | undefined> {
    const row = await this.userRow(ref);
    return row ? userOf(row) : undefined;
  }

  async listUsers(
    filter: { readonly name?: string; readonly domainId?: string } = {},
  ): Promise<IdentityUser[]> {
    let q = this.db.selectFrom('identity_user').selectAll();
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.domainId !== undefined) q = q.where('domain_id', '=', filter.domainId);
    const rows = await q.orderBy('name').orderBy('id').execute();
    return rows.map(userOf);
  }

  async createUser(user: NewUser): Promise<IdentityUser> {
    const hash = user.password ? await this.hasher.hash(user.password) : null;
    const row: UserRow = {
      id: newIdentityId(),
      name: user.name,
      domain_id: user.domainId,
      email: user.email ?? null,
      description: user.description ?? null,
      default_project_id: user.defaultProjectId ?? null,
      enabled: user.enabled === false ? 0 : 1,
      password_hash: hash,
      created_at: this.clock(),
    };
    await this.refuseTakenUserName(user.name, user.domainId);
    try {
      await this.db.insertInto('identity_user').values(row).execute();
    } catch (e) {
      await this.refuseTakenUserName(user.name, user.domainId);
      throw e;
    }
    return userOf(row);
  }

  async updateUser(id: string, changes: UserChanges): Promise<IdentityUser | undefined> {
    const current = await this.userRow({ id });
    if (!current) return undefined;
    const set: Partial<UserRow> = {};
    if (changes.name !== undefined && changes.name !== current.name) {
      await this.refuseTakenUserName(changes.name, current.domain_id);
      set.name = changes.name;
    }
    if (changes.enabled !== undefined) set.enabled = changes.enabled ? 1 : 0;
    if (changes.email !== undefined) set.email = changes.email;
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.defaultProjectId !== undefined) set.default_project_id = changes.defaultProjectId;
    if (changes.password !== undefined)
      set.password_hash = changes.password ? await this.hasher.hash(changes.password) : null;
    if (Object.keys(set).length > 0) {
      try {
        await this.db.updateTable('identity_user').set(set).where('id', '=', id).execute();
      } catch (e) {
        if (set.name !== undefined) await this.refuseTakenUserName(set.name, current.domain_id);
        throw e;
      }
    }
    return userOf({ ...current, ...set });
  }

  async deleteUser(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('identity_group_member').where('user_id', '=', id).execute();
      const r = await tx.deleteFrom('identity_user').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async getGroup(id: string): Promise<IdentityGroup | undefined> {
    const row = await this.db
      .selectFrom('identity_group')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? groupOf(row) : undefined;
  }

  async listGroups(
    filter: { readonly name?: string; readonly domainId?: string } = {},
  ): Promise<IdentityGroup[]> {
    let q = this.db.selectFrom('identity_group').selectAll();
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.domainId !== undefined) q = q.where('domain_id', '=', filter.domainId);
    const rows = await q.orderBy('name').orderBy('id').execute();
    return rows.map(groupOf);
  }

  async createGroup(group: NewGroup): Promise<IdentityGroup> {
    const row: GroupRow = {
      id: newIdentityId(),
      name: group.name,
      domain_id: group.domainId,
      description: group.description ?? '',
    };
    await this.refuseTakenGroupName(group.name, group.domainId);
    try {
      await this.db.insertInto('identity_group').values(row).execute();
    } catch (e) {
      await this.refuseTakenGroupName(group.name, group.domainId);
      throw e;
    }
    return groupOf(row);
  }

  async updateGroup(id: string, changes: GroupChanges): Promise<IdentityGroup | undefined> {
    const current = await this.db
      .selectFrom('identity_group')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!current) return undefined;
    const set: Partial<GroupRow> = {};
    if (changes.name !== undefined && changes.name !== current.name) {
      await this.refuseTakenGroupName(changes.name, current.domain_id);
      set.name = changes.name;
    }
    if (changes.description !== undefined) set.description = changes.description;
    if (Object.keys(set).length > 0)
      await this.db.updateTable('identity_group').set(set).where('id', '=', id).execute();
    return groupOf({ ...current, ...set });
  }

  async deleteGroup(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('identity_group_member').where('group_id', '=', id).execute();
      const r = await tx.deleteFrom('identity_group').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async addMember(groupId: string, userId: string): Promise<void> {
    await this.db
      .insertInto('identity_group_member')
      .values({ group_id: groupId, user_id: userId })
      .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
      .execute();
  }

  async removeMember(groupId: string, userId: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('identity_group_member')
      .where('group_id', '=', groupId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async isMember(groupId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('identity_group_member')
      .select('group_id')
      .where('group_id', '=', groupId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async groupsOf(userId: string): Promise<IdentityGroup[]> {
    const rows = await this.db
      .selectFrom('identity_group')
      .innerJoin('identity_group_member', 'identity_group_member.group_id', 'identity_group.id')
      .selectAll('identity_group')
      .where('identity_group_member.user_id', '=', userId)
      .orderBy('identity_group.name')
      .execute();
    return rows.map(groupOf);
  }

  async membersOf(groupId: string): Promise<IdentityUser[]> {
    const rows = await this.db
      .selectFrom('identity_user')
      .innerJoin('identity_group_member', 'identity_group_member.user_id', 'identity_user.id')
      .selectAll('identity_user')
      .where('identity_group_member.group_id', '=', groupId)
      .orderBy('identity_user.name')
      .execute();
    return rows.map(userOf);
  }

  private async userRow(ref: UserRef): Promise<UserRow | undefined> {
    let q = this.db.selectFrom('identity_user').selectAll();
    q =
      'id' in ref
        ? q.where('id', '=', ref.id)
        : q.where('name', '=', ref.name).where('domain_id', '=', ref.domainId);
    return q.executeTakeFirst();
  }

  private async refuseTakenUserName(name: string, domainId: string): Promise<void> {
    const taken = await this.db
      .selectFrom('identity_user')
      .select('id')
      .where('name', '=', name)
      .where('domain_id', '=', domainId)
      .executeTakeFirst();
    if (taken) throw new DuplicateError('user', name);
  }

  private async refuseTakenGroupName(name: string, domainId: string): Promise<void> {
    const taken = await this.db
      .selectFrom('identity_group')
      .select('id')
      .where('name', '=', name)
      .where('domain_id', '=', domainId)
      .executeTakeFirst();
    if (taken) throw new DuplicateError('group', name);
  }
}
