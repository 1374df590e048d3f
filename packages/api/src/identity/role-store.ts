import { DuplicateError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import type { AssignmentRow, IdentityTables, RoleRow } from './identity-tables.js';
import { newIdentityId } from './sql-backend.js';

/** A role. */
export interface Role {
  readonly id: string;
  readonly name: string;
  readonly description: string;
}

/** Who holds a role. */
export type ActorType = AssignmentRow['actor_type'];
/** On what a role is held (`system`'s target id is `all`). */
export type TargetType = AssignmentRow['target_type'];

/** One role grant. */
export interface Assignment {
  readonly actorType: ActorType;
  readonly actorId: string;
  readonly targetType: TargetType;
  readonly targetId: string;
  readonly roleId: string;
}

/** Filters of {@link RoleStore.assignments}; every given one must match. */
export interface AssignmentFilter {
  readonly actorType?: ActorType;
  readonly actorIds?: readonly string[];
  readonly targetType?: TargetType;
  readonly targetId?: string;
  readonly roleId?: string;
}

/**
 * The roles each default role implies, as Keystone's bootstrap makes them: admin implies member,
 * member implies reader.
 */
export const impliedRoleNames: Readonly<Record<string, readonly string[]>> = Object.freeze({
  admin: ['member'],
  member: ['reader'],
});

/** Every role a set of role names implies, transitively (the names themselves included). */
export function withImplied(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const queue = [...names];
  while (queue.length) {
    const name = queue.pop()!;
    if (out.has(name)) continue;
    out.add(name);
    queue.push(...(impliedRoleNames[name] ?? []));
  }
  return out;
}

const roleOf = (r: RoleRow): Role => ({ id: r.id, name: r.name, description: r.description });
const assignmentOf = (r: AssignmentRow): Assignment => ({
  actorType: r.actor_type,
  actorId: r.actor_id,
  targetType: r.target_type,
  targetId: r.target_id,
  roleId: r.role_id,
});

/**
 * Roles (`identity_role`, names unique) and role assignments (`identity_assignment`): who holds
 * which role on which project, domain or the system. Kept in SQL whatever the identity backend.
 */
export class RoleStore {
  constructor(private readonly db: Kysely<IdentityTables>) {}

  async get(ref: { readonly id: string } | { readonly name: string }): Promise<Role | undefined> {
    const q = this.db.selectFrom('identity_role').selectAll();
    const row = await ('id' in ref
      ? q.where('id', '=', ref.id)
      : q.where('name', '=', ref.name)
    ).executeTakeFirst();
    return row ? roleOf(row) : undefined;
  }

  async list(filter: { readonly name?: string; readonly ids?: readonly string[] } = {}): Promise<Role[]> {
    if (filter.ids && filter.ids.length === 0) return [];
    let q = this.db.selectFrom('identity_role').selectAll();
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.ids) q = q.where('id', 'in', [...filter.ids]);
    return (await q.orderBy('name').execute()).map(roleOf);
  }

  /** @throws DuplicateError (kind `role`) when the name is taken */
  async create(role: { readonly name: string; readonly description?: string }): Promise<Role> {
    if (await this.get({ name: role.name })) throw new DuplicateError('role', role.name);
    const row: RoleRow = { id: newIdentityId(), name: role.name, description: role.description ?? '' };
    try {
      await this.db.insertInto('identity_role').values(row).execute();
    } catch (e) {
      if (await this.get({ name: role.name })) throw new DuplicateError('role', role.name);
      throw e;
    }
    return roleOf(row);
  }

  /** Creates the role unless it exists (bootstrap; safe when several processes start at once). */
  async ensure(name: string): Promise<Role> {
    await this.db
      .insertInto('identity_role')
      .values({ id: newIdentityId(), name, description: '' })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return (await this.get({ name }))!;
  }

  async update(
    id: string,
    changes: { readonly name?: string; readonly description?: string },
  ): Promise<Role | undefined> {
    const current = await this.get({ id });
    if (!current) return undefined;
    const set: Partial<RoleRow> = {};
    if (changes.name !== undefined && changes.name !== current.name) {
      if (await this.get({ name: changes.name })) throw new DuplicateError('role', changes.name);
      set.name = changes.name;
    }
    if (changes.description !== undefined) set.description = changes.description;
    if (Object.keys(set).length > 0)
      await this.db.updateTable('identity_role').set(set).where('id', '=', id).execute();
    return { ...current, ...set };
  }

  /** Deletes the role and every assignment of it; `false` if there was none. */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('identity_assignment').where('role_id', '=', id).execute();
      const r = await tx.deleteFrom('identity_role').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** Grants a role (idempotent). */
  async grant(a: Assignment): Promise<void> {
    await this.db
      .insertInto('identity_assignment')
      .values({
        actor_type: a.actorType,
        actor_id: a.actorId,
        target_type: a.targetType,
        target_id: a.targetId,
        role_id: a.roleId,
      })
      .onConflict((oc) =>
        oc.columns(['actor_type', 'actor_id', 'target_type', 'target_id', 'role_id']).doNothing(),
      )
      .execute();
  }

  /** Revokes a role; `false` if it was not granted. */
  async revoke(a: Assignment): Promise<boolean> {
    const r = await this.db
      .deleteFrom('identity_assignment')
      .where('actor_type', '=', a.actorType)
      .where('actor_id', '=', a.actorId)
      .where('target_type', '=', a.targetType)
      .where('target_id', '=', a.targetId)
      .where('role_id', '=', a.roleId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async has(a: Assignment): Promise<boolean> {
    return (await this.assignments({ ...a, actorIds: [a.actorId] })).length > 0;
  }

  /** Removes every assignment held by an actor (a deleted user or group). */
  async forgetActor(actorType: ActorType, actorId: string): Promise<void> {
    await this.db
      .deleteFrom('identity_assignment')
      .where('actor_type', '=', actorType)
      .where('actor_id', '=', actorId)
      .execute();
  }

  async assignments(filter: AssignmentFilter = {}): Promise<Assignment[]> {
    if (filter.actorIds && filter.actorIds.length === 0) return [];
    let q = this.db.selectFrom('identity_assignment').selectAll();
    if (filter.actorType !== undefined) q = q.where('actor_type', '=', filter.actorType);
    if (filter.actorIds) q = q.where('actor_id', 'in', [...filter.actorIds]);
    if (filter.targetType !== undefined) q = q.where('target_type', '=', filter.targetType);
    if (filter.targetId !== undefined) q = q.where('target_id', '=', filter.targetId);
    if (filter.roleId !== undefined) q = q.where('role_id', '=', filter.roleId);
    const rows = await q
      .orderBy('target_type')
      .orderBy('target_id')
      .orderBy('actor_type')
      .orderBy('actor_id')
      .orderBy('role_id')
      .execute();
    return rows.map(assignmentOf);
  }

  /**
   * The roles a user holds on a target: granted to the user or to one of its groups, plus the
   * roles those imply (admin → member → reader), sorted by name.
   */
  async effectiveRoles(
    userId: string,
    groupIds: readonly string[],
    targetType: TargetType,
    targetId: string,
  ): Promise<Role[]> {
    let q = this.db
      .selectFrom('identity_assignment')
      .select('role_id')
      .where('target_type', '=', targetType)
      .where('target_id', '=', targetId);
    q = q.where((eb) => {
      const user = eb.and([eb('actor_type', '=', 'user'), eb('actor_id', '=', userId)]);
      if (groupIds.length === 0) return user;
      return eb.or([user, eb.and([eb('actor_type', '=', 'group'), eb('actor_id', 'in', [...groupIds])])]);
    });
    const ids = [...new Set((await q.execute()).map((r) => r.role_id))];
    if (ids.length === 0) return [];
    const direct = await this.list({ ids });
    const names = withImplied(direct.map((r) => r.name));
    const implied = [...names].filter((n) => !direct.some((r) => r.name === n));
    const more = implied.length
      ? (await this.db.selectFrom('identity_role').selectAll().where('name', 'in', implied).execute()).map(
          roleOf,
        )
      : [];
    return [...direct, ...more].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Ids of the targets of a type on which a user (or one of its groups) holds any role. */
  async targetsOf(userId: string, groupIds: readonly string[], targetType: TargetType): Promise<string[]> {
    const rows = await this.db
      .selectFrom('identity_assignment')
      .select('target_id')
      .distinct()
      .where('target_type', '=', targetType)
      .where((eb) => {
        const user = eb.and([eb('actor_type', '=', 'user'), eb('actor_id', '=', userId)]);
        if (groupIds.length === 0) return user;
        return eb.or([user, eb.and([eb('actor_type', '=', 'group'), eb('actor_id', 'in', [...groupIds])])]);
      })
      .execute();
    return rows.map((r) => r.target_id);
  }
}
