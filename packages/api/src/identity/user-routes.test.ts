import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cheapHasher,
  type IdentityHarness,
  identityHarness,
  memoryDb,
  passwordAuth,
  projectScope,
  seedMember,
} from './identity.test-helper.js';
import type { IdentityBackend } from './identity-backend.js';
import { migrateIdentity } from './identity-migrations.js';
import type { IdentityTables } from './identity-tables.js';
import { SqlIdentityBackend } from './sql-backend.js';

describe('identity: /v3/users and /v3/groups', () => {
  let h: IdentityHarness;
  let admin: string;
  let alice: string;
  let aliceId: string;
  let bobId: string;
  beforeAll(async () => {
    h = await identityHarness();
    admin = await h.adminToken();
    aliceId = (await seedMember(h, admin, 'alice', 'pw-alice-1', 'p1')).userId;
    bobId = (await seedMember(h, admin, 'bob', 'pw-bob-1', 'p2')).userId;
    alice = await h.login('alice', 'pw-alice-1', projectScope('p1'));
  });
  afterAll(() => h.close());

  const createUser = (token: string, user: Record<string, unknown>) =>
    h.call(token, { method: 'POST', url: '/v3/users', payload: { user } });

  it('creates a user in Keystone’s shape, without the password, and refuses a duplicate', async () => {
    const p1 = (await h.call(admin, { method: 'GET', url: '/v3/projects?name=p1' })).json().projects[0];
    const r = await createUser(admin, {
      name: 'carol',
      password: 'pw-carol-1',
      domain_id: 'default',
      default_project_id: p1.id,
      enabled: true,
      email: 'carol@example.org',
      description: 'Carol',
    });
    expect(r.statusCode).toBe(201);
    const u = r.json().user;
    expect(u).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'carol',
      domain_id: 'default',
      default_project_id: p1.id,
      enabled: true,
      email: 'carol@example.org',
      description: 'Carol',
      password_expires_at: null,
      options: {},
      links: { self: `http://127.0.0.1:8774/v3/users/${u.id}` },
    });
    const dup = await createUser(admin, { name: 'carol', password: 'other' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.message).toBe(
      'Conflict occurred attempting to store user - Duplicate entry found with name carol at domain ID default.',
    );
  });

  it('lists with filters and resolves names the way the clients do', async () => {
    const all = (await h.call(admin, { method: 'GET', url: '/v3/users' })).json();
    expect(all.users.map((u: { name: string }) => u.name)).toEqual(
      expect.arrayContaining(['admin', 'alice', 'bob']),
    );
    expect(all.links.self).toBe('http://127.0.0.1:8774/v3/users');
    expect((await h.call(admin, { method: 'GET', url: '/v3/users/alice' })).statusCode).toBe(404);
    const byName = (
      await h.call(admin, { method: 'GET', url: '/v3/users?name=alice&domain_id=default' })
    ).json();
    expect(byName.users.map((u: { id: string }) => u.id)).toEqual([aliceId]);
    expect(
      (await h.call(admin, { method: 'GET', url: '/v3/users?domain_id=elsewhere' })).json().users,
    ).toEqual([]);
  });

  it('keeps a member to itself: no user list, no other user, no writes', async () => {
    const list = await h.call(alice, { method: 'GET', url: '/v3/users' });
    expect(list.statusCode).toBe(403);
    expect(list.json().error.message).toBe(
      'You are not authorized to perform the requested action: identity:list_users.',
    );
    expect((await h.call(alice, { method: 'GET', url: `/v3/users/${aliceId}` })).statusCode).toBe(200);
    expect((await h.call(alice, { method: 'GET', url: `/v3/users/${bobId}` })).statusCode).toBe(403);
    expect((await h.call(alice, { method: 'GET', url: `/v3/users/${bobId}/projects` })).statusCode).toBe(403);
    expect((await h.call(alice, { method: 'GET', url: `/v3/users/${bobId}/groups` })).statusCode).toBe(403);
    const patch = await h.call(alice, {
      method: 'PATCH',
      url: `/v3/users/${bobId}`,
      payload: { user: { password: 'taken-over' } },
    });
    expect(patch.statusCode).toBe(403);
    expect(
      (
        await h.call(alice, {
          method: 'PATCH',
          url: `/v3/users/${aliceId}`,
          payload: { user: { enabled: true } },
        })
      ).statusCode,
    ).toBe(403);
    expect((await h.call(alice, { method: 'DELETE', url: `/v3/users/${bobId}` })).statusCode).toBe(403);
    expect((await createUser(alice, { name: 'sneaky', password: 'x' })).statusCode).toBe(403);
    expect((await h.call(alice, { method: 'GET', url: '/v3/groups' })).statusCode).toBe(403);
    // bob's password still works
    expect(
      (
        await h.call(null, {
          method: 'POST',
          url: '/v3/auth/tokens',
          payload: passwordAuth('bob', 'pw-bob-1'),
        })
      ).statusCode,
    ).toBe(201);
  });

  it('changes one’s own password with the original; old tokens stop working', async () => {
    const { userId } = await seedMember(h, admin, 'dan', 'pw-dan-1', 'p1');
    const before = await h.login('dan', 'pw-dan-1', projectScope('p1'));
    const change = (original: string, password: string) =>
      h.call(null, {
        method: 'POST',
        url: `/v3/users/${userId}/password`,
        payload: { user: { original_password: original, password } },
      });
    const wrong = await change('not-it', 'pw-dan-2');
    expect(wrong.statusCode).toBe(401);
    expect((await h.call(before, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(200);
    expect((await change('pw-dan-1', 'pw-dan-2')).statusCode).toBe(204);
    expect((await h.call(before, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(401);
    const after = await h.login('dan', 'pw-dan-2', projectScope('p1'));
    expect((await h.call(after, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(200);
    expect((await change('pw-dan-2', 'x\u0000')).statusCode).toBe(400);
  });

  it('lets the administrator reset a password, disable and delete a user (tokens revoked each time)', async () => {
    const { userId } = await seedMember(h, admin, 'eve', 'pw-eve-1', 'p1');
    let eve = await h.login('eve', 'pw-eve-1', projectScope('p1'));
    const patch = (user: Record<string, unknown>) =>
      h.call(admin, { method: 'PATCH', url: `/v3/users/${userId}`, payload: { user } });
    const reset = await patch({ password: 'pw-eve-2', email: 'eve@example.org' });
    expect(reset.statusCode).toBe(200);
    expect(reset.json().user.email).toBe('eve@example.org');
    expect((await h.call(eve, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(401);
    eve = await h.login('eve', 'pw-eve-2', projectScope('p1'));
    expect((await patch({ enabled: false })).json().user.enabled).toBe(false);
    expect((await h.call(eve, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(401);
    expect((await patch({ enabled: true })).statusCode).toBe(200);
    eve = await h.login('eve', 'pw-eve-2', projectScope('p1'));
    expect((await h.call(admin, { method: 'DELETE', url: `/v3/users/${userId}` })).statusCode).toBe(204);
    expect((await h.call(eve, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(401);
    expect((await h.call(admin, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(404);
    const assignments = await h.call(admin, { method: 'GET', url: `/v3/role_assignments?user.id=${userId}` });
    expect(assignments.json().role_assignments).toEqual([]);
  });

  it('refuses hostile user fields with a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'nul\u0000' }, 'body.user.name'],
      [{ name: 'bell\u0007' }, 'body.user.name'],
      [{ name: 'u'.repeat(256) }, 'body.user.name'],
      [{ name: 'ok1', password: 'p'.repeat(4097) }, 'body.user.password'],
      [{ name: 'ok2', email: 'a\u0000@b' }, 'body.user.email'],
      [{ name: 'ok3', description: 'x\u0000' }, 'body.user.description'],
      [{ name: 'ok4', enabled: 1 }, 'body.user.enabled'],
    ];
    for (const [user, field] of cases) {
      const r = await createUser(admin, user);
      expect(r.statusCode, field).toBe(400);
      expect(r.json().error.message).toContain(field);
    }
  });

  it('manages groups and members; a member of a group gets the group’s roles', async () => {
    const g = await h.call(admin, {
      method: 'POST',
      url: '/v3/groups',
      payload: { group: { name: 'ops', description: 'Ops' } },
    });
    expect(g.statusCode).toBe(201);
    const group = g.json().group;
    expect(group).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'ops',
      domain_id: 'default',
      description: 'Ops',
      links: { self: `http://127.0.0.1:8774/v3/groups/${group.id}` },
    });
    expect(
      (await h.call(admin, { method: 'POST', url: '/v3/groups', payload: { group: { name: 'ops' } } }))
        .statusCode,
    ).toBe(409);
    const created = await createUser(admin, { name: 'gina', password: 'pw-gina-1' });
    const gina = created.json().user.id;
    const member = `/v3/groups/${group.id}/users/${gina}`;
    expect((await h.call(admin, { method: 'HEAD', url: member })).statusCode).toBe(404);
    expect((await h.call(admin, { method: 'PUT', url: member })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'HEAD', url: member })).statusCode).toBe(204);
    const users = await h.call(admin, { method: 'GET', url: `/v3/groups/${group.id}/users` });
    expect(users.json().users.map((u: { name: string }) => u.name)).toEqual(['gina']);
    // no role yet: no project token
    const attempt = () =>
      h.call(null, {
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: passwordAuth('gina', 'pw-gina-1', projectScope('p2')),
      });
    expect((await attempt()).statusCode).toBe(401);
    const p2 = (await h.call(admin, { method: 'GET', url: '/v3/projects?name=p2' })).json().projects[0];
    const reader = (await h.call(admin, { method: 'GET', url: '/v3/roles?name=reader' })).json().roles[0];
    expect(
      (
        await h.call(admin, {
          method: 'PUT',
          url: `/v3/projects/${p2.id}/groups/${group.id}/roles/${reader.id}`,
        })
      ).statusCode,
    ).toBe(204);
    const ok = await attempt();
    expect(ok.statusCode).toBe(201);
    expect(ok.json().token.roles.map((r: { name: string }) => r.name)).toEqual(['reader']);
    const token = ok.headers['x-subject-token'] as string;
    const mine = await h.call(token, { method: 'GET', url: `/v3/users/${gina}/groups` });
    expect(mine.json().groups.map((x: { name: string }) => x.name)).toEqual(['ops']);
    expect(
      (await h.call(token, { method: 'GET', url: `/v3/users/${gina}/projects` })).json().projects[0].id,
    ).toBe(p2.id);
    // renaming, then removing the member ends its project token at once
    const renamed = await h.call(admin, {
      method: 'PATCH',
      url: `/v3/groups/${group.id}`,
      payload: { group: { name: 'ops2' } },
    });
    expect(renamed.json().group.name).toBe('ops2');
    expect((await h.call(admin, { method: 'DELETE', url: member })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'DELETE', url: member })).statusCode).toBe(404);
    expect((await h.call(token, { method: 'GET', url: `/v3/users/${gina}` })).statusCode).toBe(401);
    expect((await h.call(admin, { method: 'DELETE', url: `/v3/groups/${group.id}` })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'GET', url: `/v3/groups/${group.id}` })).statusCode).toBe(404);
    expect((await h.call(admin, { method: 'GET', url: '/v3/groups?name=ops2' })).json().groups).toEqual([]);
  });
});

/** A directory-like backend: the SQL users, read-only (as an LDAP backend is). */
function readOnly(inner: SqlIdentityBackend): IdentityBackend {
  return {
    kind: 'ldap',
    writable: false,
    authenticate: (ref, pw) => inner.authenticate(ref, pw),
    getUser: (ref) => inner.getUser(ref),
    listUsers: (f) => inner.listUsers(f),
    getGroup: (id) => inner.getGroup(id),
    listGroups: (f) => inner.listGroups(f),
    groupsOf: (id) => inner.groupsOf(id),
    membersOf: (id) => inner.membersOf(id),
  };
}

describe('identity routes over a read-only backend', () => {
  let h: IdentityHarness;
  let admin: string;
  let userId: string;
  let groupId: string;
  beforeAll(async () => {
    const db = memoryDb();
    await migrateIdentity(db);
    const sql = new SqlIdentityBackend(db as unknown as Kysely<IdentityTables>, { hasher: cheapHasher() });
    await sql.createUser({ name: 'admin', domainId: 'default', password: 'Adm1n-Secret-Pw' });
    userId = (await sql.createUser({ name: 'dir-user', domainId: 'default', password: 'pw-dir-1' })).id;
    groupId = (await sql.createGroup({ name: 'dir-group', domainId: 'default' })).id;
    await sql.addMember(groupId, userId);
    h = await identityHarness({ db, backend: readOnly(sql) });
    admin = await h.adminToken();
  });
  afterAll(() => h.close());

  it('reads users and groups but refuses every write with 403', async () => {
    expect((await h.call(admin, { method: 'GET', url: `/v3/users/${userId}` })).json().user.name).toBe(
      'dir-user',
    );
    expect(
      (await h.call(admin, { method: 'HEAD', url: `/v3/groups/${groupId}/users/${userId}` })).statusCode,
    ).toBe(204);
    const writes = [
      await h.call(admin, {
        method: 'POST',
        url: '/v3/users',
        payload: { user: { name: 'new', password: 'x' } },
      }),
      await h.call(admin, {
        method: 'PATCH',
        url: `/v3/users/${userId}`,
        payload: { user: { enabled: false } },
      }),
      await h.call(admin, { method: 'DELETE', url: `/v3/users/${userId}` }),
      await h.call(admin, { method: 'POST', url: '/v3/groups', payload: { group: { name: 'g' } } }),
      await h.call(admin, { method: 'DELETE', url: `/v3/groups/${groupId}` }),
      await h.call(admin, { method: 'DELETE', url: `/v3/groups/${groupId}/users/${userId}` }),
      await h.call(null, {
        method: 'POST',
        url: `/v3/users/${userId}/password`,
        payload: { user: { original_password: 'pw-dir-1', password: 'pw-dir-2' } },
      }),
    ];
    for (const r of writes) {
      expect(r.statusCode).toBe(403);
      expect(r.json().error).toEqual({
        code: 403,
        message: 'LDAP does not support write operations',
        title: 'Forbidden',
      });
    }
    // role assignments stay in SQL and work for directory users
    const p1 = (
      await h.call(admin, { method: 'POST', url: '/v3/projects', payload: { project: { name: 'p1' } } })
    ).json().project;
    const member = (await h.call(admin, { method: 'GET', url: '/v3/roles?name=member' })).json().roles[0];
    expect(
      (
        await h.call(admin, {
          method: 'PUT',
          url: `/v3/projects/${p1.id}/groups/${groupId}/roles/${member.id}`,
        })
      ).statusCode,
    ).toBe(204);
    expect((await h.login('dir-user', 'pw-dir-1', projectScope('p1'))).length).toBeGreaterThan(10);
  });
});
