import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityHarness, identityHarness, projectScope, seedMember } from './identity.test-helper.js';

interface Ids {
  userId: string;
  projectId: string;
  roleId: string;
}

describe('identity: roles, grants and role assignments', () => {
  let h: IdentityHarness;
  let admin: string;
  let alice: Ids;
  let aliceToken: string;
  const role = async (name: string): Promise<string> =>
    (await h.call(admin, { method: 'GET', url: `/v3/roles?name=${name}` })).json().roles[0].id;
  beforeAll(async () => {
    h = await identityHarness();
    admin = await h.adminToken();
    alice = await seedMember(h, admin, 'alice', 'pw-alice-1', 'p1');
    aliceToken = await h.login('alice', 'pw-alice-1', projectScope('p1'));
  });
  afterAll(() => h.close());

  it('lists the bootstrap roles and creates, shows, renames and deletes a role', async () => {
    const list = await h.call(admin, { method: 'GET', url: '/v3/roles' });
    expect(list.json().roles.map((r: { name: string }) => r.name)).toEqual(['admin', 'member', 'reader']);
    const created = await h.call(admin, {
      method: 'POST',
      url: '/v3/roles',
      payload: { role: { name: 'auditor', description: 'reads logs' } },
    });
    expect(created.statusCode).toBe(201);
    const r = created.json().role;
    expect(r).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'auditor',
      domain_id: null,
      description: 'reads logs',
      options: {},
      links: { self: `http://127.0.0.1:8774/v3/roles/${r.id}` },
    });
    const dup = await h.call(admin, {
      method: 'POST',
      url: '/v3/roles',
      payload: { role: { name: 'auditor' } },
    });
    expect(dup.statusCode).toBe(409);
    expect((await h.call(admin, { method: 'GET', url: '/v3/roles/auditor' })).statusCode).toBe(404);
    expect((await h.call(admin, { method: 'GET', url: `/v3/roles/${r.id}` })).json().role.name).toBe(
      'auditor',
    );
    const renamed = await h.call(admin, {
      method: 'PATCH',
      url: `/v3/roles/${r.id}`,
      payload: { role: { name: 'auditor2' } },
    });
    expect(renamed.json().role.name).toBe('auditor2');
    expect((await h.call(admin, { method: 'DELETE', url: `/v3/roles/${r.id}` })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'GET', url: `/v3/roles/${r.id}` })).statusCode).toBe(404);
    const bad = await h.call(admin, {
      method: 'POST',
      url: '/v3/roles',
      payload: { role: { name: 'r\u0000' } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('body.role.name');
  });

  it('grants, checks, lists and revokes project roles of users and groups', async () => {
    const reader = await role('reader');
    const base = `/v3/projects/${alice.projectId}/users/${alice.userId}/roles`;
    expect((await h.call(admin, { method: 'GET', url: `${base}/${reader}` })).statusCode).toBe(404);
    expect((await h.call(admin, { method: 'HEAD', url: `${base}/${alice.roleId}` })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'PUT', url: `${base}/${reader}` })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'PUT', url: `${base}/${reader}` })).statusCode).toBe(204); // idempotent
    const listed = await h.call(admin, { method: 'GET', url: base });
    expect(
      listed
        .json()
        .roles.map((r: { name: string }) => r.name)
        .sort(),
    ).toEqual(['member', 'reader']);
    expect((await h.call(admin, { method: 'DELETE', url: `${base}/${reader}` })).statusCode).toBe(204);
    const again = await h.call(admin, { method: 'DELETE', url: `${base}/${reader}` });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.message).toContain('Could not find role assignment');
    expect((await h.call(admin, { method: 'PUT', url: `${base}/no-such-role` })).statusCode).toBe(404);
    expect(
      (await h.call(admin, { method: 'PUT', url: `/v3/projects/nope/users/${alice.userId}/roles/${reader}` }))
        .statusCode,
    ).toBe(404);
    expect(
      (
        await h.call(admin, {
          method: 'PUT',
          url: `/v3/projects/${alice.projectId}/users/nope/roles/${reader}`,
        })
      ).statusCode,
    ).toBe(404);
  });

  it('grants domain and system roles, which scope tokens to the domain or the system', async () => {
    const { userId } = await seedMember(h, admin, 'dora', 'pw-dora-1', 'p1');
    const reader = await role('reader');
    expect(
      (await h.call(admin, { method: 'PUT', url: `/v3/domains/default/users/${userId}/roles/${reader}` }))
        .statusCode,
    ).toBe(204);
    const domainToken = await h.login('dora', 'pw-dora-1', { domain: { id: 'default' } });
    const shown = await h.call(admin, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': domainToken },
    });
    expect(shown.json().token.domain).toEqual({ id: 'default', name: 'Default' });
    // a domain reader may list the domain's users (Keystone's default), a project member may not
    expect(
      (await h.call(domainToken, { method: 'GET', url: '/v3/users?domain_id=default' })).statusCode,
    ).toBe(200);
    expect((await h.call(domainToken, { method: 'GET', url: '/v3/users?domain_id=other' })).statusCode).toBe(
      403,
    );
    expect(
      (await h.call(domainToken, { method: 'GET', url: '/v3/auth/domains' })).json().domains,
    ).toHaveLength(1);
    expect(
      (await h.call(admin, { method: 'PUT', url: `/v3/system/users/${userId}/roles/${reader}` })).statusCode,
    ).toBe(204);
    expect(
      (await h.call(admin, { method: 'HEAD', url: `/v3/system/users/${userId}/roles/${reader}` })).statusCode,
    ).toBe(204);
    const systemToken = await h.login('dora', 'pw-dora-1', { system: { all: true } });
    // a system reader reads everything but writes nothing
    expect((await h.call(systemToken, { method: 'GET', url: '/v3/projects' })).statusCode).toBe(200);
    expect(
      (
        await h.call(systemToken, {
          method: 'POST',
          url: '/v3/projects',
          payload: { project: { name: 'nope' } },
        })
      ).statusCode,
    ).toBe(403);
    expect(
      (await h.call(admin, { method: 'DELETE', url: `/v3/system/users/${userId}/roles/${reader}` }))
        .statusCode,
    ).toBe(204);
    expect((await h.call(systemToken, { method: 'GET', url: '/v3/projects' })).statusCode).toBe(401);
  });

  it('lists role assignments with filters, effective (groups expanded, implied roles) and names', async () => {
    const { userId, projectId } = await seedMember(h, admin, 'gus', 'pw-gus-1', 'pg', 'reader');
    const group = (
      await h.call(admin, { method: 'POST', url: '/v3/groups', payload: { group: { name: 'g1' } } })
    ).json().group;
    await h.call(admin, { method: 'PUT', url: `/v3/groups/${group.id}/users/${userId}` });
    const adminRole = await role('admin');
    await h.call(admin, {
      method: 'PUT',
      url: `/v3/projects/${projectId}/groups/${group.id}/roles/${adminRole}`,
    });

    const direct = await h.call(admin, {
      method: 'GET',
      url: `/v3/role_assignments?scope.project.id=${projectId}`,
    });
    expect(direct.statusCode).toBe(200);
    const rows = direct.json().role_assignments;
    expect(rows).toHaveLength(2);
    expect(rows).toContainEqual({
      role: { id: await role('reader') },
      user: { id: userId },
      scope: { project: { id: projectId } },
      links: {
        assignment: `http://127.0.0.1:8774/v3/projects/${projectId}/users/${userId}/roles/${await role('reader')}`,
      },
    });
    expect(rows).toContainEqual({
      role: { id: adminRole },
      group: { id: group.id },
      scope: { project: { id: projectId } },
      links: {
        assignment: `http://127.0.0.1:8774/v3/projects/${projectId}/groups/${group.id}/roles/${adminRole}`,
      },
    });
    expect(direct.json().links.self).toBe(
      `http://127.0.0.1:8774/v3/role_assignments?scope.project.id=${projectId}`,
    );

    const eff = await h.call(admin, {
      method: 'GET',
      url: `/v3/role_assignments?user.id=${userId}&scope.project.id=${projectId}&effective&include_names`,
    });
    const effective = eff.json().role_assignments;
    expect(effective.every((a: { user?: unknown }) => a.user)).toBe(true);
    expect(effective.map((a: { role: { name: string } }) => a.role.name).sort()).toEqual([
      'admin',
      'member',
      'reader',
      'reader',
    ]);
    const viaGroup = effective.find((a: { role: { name: string } }) => a.role.name === 'admin');
    expect(viaGroup.links.membership).toBe(`http://127.0.0.1:8774/v3/groups/${group.id}/users/${userId}`);
    expect(viaGroup.user).toEqual({ id: userId, name: 'gus', domain: { id: 'default', name: 'Default' } });
    expect(viaGroup.scope.project).toEqual({
      id: projectId,
      name: 'pg',
      domain: { id: 'default', name: 'Default' },
    });
    const implied = effective.find((a: { role: { name: string } }) => a.role.name === 'member');
    expect(implied.links.prior_role).toBe(`http://127.0.0.1:8774/v3/roles/${adminRole}`);

    const byRole = await h.call(admin, {
      method: 'GET',
      url: `/v3/role_assignments?role.id=${adminRole}&user.id=${userId}`,
    });
    expect(byRole.json().role_assignments).toEqual([]); // the admin role is the group's, not the user's
    const badCombo = await h.call(admin, {
      method: 'GET',
      url: `/v3/role_assignments?group.id=${group.id}&effective`,
    });
    expect(badCombo.statusCode).toBe(400);
    // the group's role gives the user the admin role on pg
    const token = await h.login('gus', 'pw-gus-1', projectScope('pg'));
    const validated = await h.call(admin, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': token },
    });
    expect(validated.json().token.roles.map((r: { name: string }) => r.name)).toEqual([
      'admin',
      'member',
      'reader',
    ]);
  });

  it('refuses every role and grant write, and the assignment list, to a project member', async () => {
    const reader = await role('reader');
    const attempts = [
      await h.call(aliceToken, { method: 'POST', url: '/v3/roles', payload: { role: { name: 'mine' } } }),
      await h.call(aliceToken, { method: 'DELETE', url: `/v3/roles/${reader}` }),
      await h.call(aliceToken, {
        method: 'PUT',
        url: `/v3/projects/${alice.projectId}/users/${alice.userId}/roles/${await role('admin')}`,
      }),
      await h.call(aliceToken, {
        method: 'DELETE',
        url: `/v3/projects/${alice.projectId}/users/${alice.userId}/roles/${alice.roleId}`,
      }),
      await h.call(aliceToken, { method: 'PUT', url: `/v3/system/users/${alice.userId}/roles/${reader}` }),
      await h.call(aliceToken, { method: 'GET', url: '/v3/role_assignments' }),
      await h.call(aliceToken, { method: 'GET', url: '/v3/roles' }),
    ];
    for (const r of attempts) expect(r.statusCode).toBe(403);
    const check = await h.call(admin, {
      method: 'HEAD',
      url: `/v3/projects/${alice.projectId}/users/${alice.userId}/roles/${alice.roleId}`,
    });
    expect(check.statusCode).toBe(204);
  });
});
