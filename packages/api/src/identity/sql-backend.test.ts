import { DuplicateError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cheapHasher, memoryDb } from './identity.test-helper.js';
import { migrateIdentity } from './identity-migrations.js';
import type { IdentityTables } from './identity-tables.js';
import { SqlIdentityBackend } from './sql-backend.js';

describe('SqlIdentityBackend', () => {
  let db: Kysely<IdentityTables>;
  let backend: SqlIdentityBackend;
  beforeEach(async () => {
    const raw = memoryDb();
    await migrateIdentity(raw);
    db = raw as unknown as Kysely<IdentityTables>;
    backend = new SqlIdentityBackend(db, { hasher: cheapHasher() });
  });
  afterEach(() => db.destroy());

  it('authenticates by id or by name in a domain; unknown, wrong and disabled all give undefined', async () => {
    const u = await backend.createUser({
      name: 'ann',
      domainId: 'default',
      password: 'pw-ann-1',
      email: 'a@x',
    });
    expect(await backend.authenticate({ id: u.id }, 'pw-ann-1')).toEqual(u);
    expect(await backend.authenticate({ name: 'ann', domainId: 'default' }, 'pw-ann-1')).toEqual(u);
    expect(await backend.authenticate({ name: 'ann', domainId: 'other' }, 'pw-ann-1')).toBeUndefined();
    expect(await backend.authenticate({ name: 'ann', domainId: 'default' }, 'pw-ann-2')).toBeUndefined();
    expect(await backend.authenticate({ name: 'nobody', domainId: 'default' }, 'pw-ann-1')).toBeUndefined();
    await backend.updateUser(u.id, { enabled: false });
    expect(await backend.authenticate({ id: u.id }, 'pw-ann-1')).toBeUndefined();
    expect(await backend.checkPassword(u.id, 'pw-ann-1')).toBe(true);
    const noPassword = await backend.createUser({ name: 'np', domainId: 'default' });
    expect(await backend.authenticate({ id: noPassword.id }, '')).toBeUndefined();
  });

  it('keeps only an scrypt hash, replaced on a password change', async () => {
    const u = await backend.createUser({ name: 'bea', domainId: 'default', password: 'pw-bea-1' });
    const hashOf = async () =>
      (
        await db
          .selectFrom('identity_user')
          .select('password_hash')
          .where('id', '=', u.id)
          .executeTakeFirstOrThrow()
      ).password_hash;
    const first = await hashOf();
    expect(first).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(first).not.toContain('pw-bea-1');
    await backend.updateUser(u.id, { password: 'pw-bea-2' });
    expect(await hashOf()).not.toBe(first);
    expect(await backend.checkPassword(u.id, 'pw-bea-1')).toBe(false);
    expect(await backend.checkPassword(u.id, 'pw-bea-2')).toBe(true);
    await backend.updateUser(u.id, { password: null });
    expect(await hashOf()).toBeNull();
    expect(JSON.stringify(await backend.getUser({ id: u.id }))).not.toMatch(/password|scrypt/);
  });

  it('refuses a name taken in the domain, on create and on rename, with DuplicateError', async () => {
    await backend.createUser({ name: 'cy', domainId: 'default' });
    const other = await backend.createUser({ name: 'cy2', domainId: 'default' });
    await expect(backend.createUser({ name: 'cy', domainId: 'default' })).rejects.toBeInstanceOf(
      DuplicateError,
    );
    await expect(backend.updateUser(other.id, { name: 'cy' })).rejects.toBeInstanceOf(DuplicateError);
    await db
      .insertInto('identity_domain')
      .values({ id: 'd2', name: 'D2', description: '', enabled: 1 })
      .execute();
    expect((await backend.createUser({ name: 'cy', domainId: 'd2' })).domainId).toBe('d2');
    await backend.createGroup({ name: 'g', domainId: 'default' });
    await expect(backend.createGroup({ name: 'g', domainId: 'default' })).rejects.toBeInstanceOf(
      DuplicateError,
    );
    expect(await backend.listUsers({ name: 'cy' })).toHaveLength(2);
    expect(await backend.listUsers({ name: 'cy', domainId: 'd2' })).toHaveLength(1);
  });

  it('tracks memberships both ways and forgets them with the user or the group', async () => {
    const u = await backend.createUser({ name: 'dee', domainId: 'default' });
    const g1 = await backend.createGroup({ name: 'g1', domainId: 'default' });
    const g2 = await backend.createGroup({ name: 'g2', domainId: 'default', description: 'two' });
    await backend.addMember(g1.id, u.id);
    await backend.addMember(g1.id, u.id); // idempotent
    await backend.addMember(g2.id, u.id);
    expect((await backend.groupsOf(u.id)).map((g) => g.name)).toEqual(['g1', 'g2']);
    expect((await backend.membersOf(g1.id)).map((x) => x.name)).toEqual(['dee']);
    expect(await backend.isMember(g2.id, u.id)).toBe(true);
    expect(await backend.deleteGroup(g2.id)).toBe(true);
    expect((await backend.groupsOf(u.id)).map((g) => g.name)).toEqual(['g1']);
    expect(await backend.removeMember(g1.id, u.id)).toBe(true);
    expect(await backend.removeMember(g1.id, u.id)).toBe(false);
    await backend.addMember(g1.id, u.id);
    expect(await backend.deleteUser(u.id)).toBe(true);
    expect(await backend.membersOf(g1.id)).toEqual([]);
    expect(await backend.deleteUser(u.id)).toBe(false);
  });
});
