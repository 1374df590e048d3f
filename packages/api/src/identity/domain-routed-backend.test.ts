import { createServer } from 'node:net';
import { ErrorCode, isNovaError } from '@nova-lfs/core';
import type { Kysely } from 'kysely';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainRoutedBackend } from './domain-routed-backend.js';
import {
  type IdentityHarness,
  identityHarness,
  memoryDb,
  openIdentity,
  passwordAuth,
  projectScope,
} from './identity.test-helper.js';
import type { IdentityTables } from './identity-tables.js';
import { type LdapBackendOptions, LdapIdentityBackend, openLdapMapping } from './ldap-backend.js';
import { SqlIdentityBackend } from './sql-backend.js';

const LDAP_URL = process.env.NOVA_LFS_LDAP_URL ?? 'ldap://127.0.0.1:10389';
const ADMIN_DN = 'cn=admin,dc=nova,dc=test';
const ADMIN_PW = 'nova-ldap-admin';

async function slapdAnswers(): Promise<boolean> {
  const c = new Client({ url: LDAP_URL, connectTimeout: 2000, timeout: 2000 });
  try {
    await c.bind(ADMIN_DN, ADMIN_PW);
    return true;
  } catch {
    return false;
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

const available = await slapdAnswers();
if (!available) {
  const reason = `slapd does not answer on ${LDAP_URL}; start it with: bash scripts/services/start-slapd.sh`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping the domain-specific LDAP backend tests: ${reason}`);
}

/** The test tree (scripts/services/start-slapd.sh) as domain `ldap`, memberships from memberOf. */
const ldapOptions: LdapBackendOptions = {
  ...openLdapMapping,
  url: LDAP_URL,
  bindDn: ADMIN_DN,
  bindPassword: ADMIN_PW,
  userTreeDn: 'ou=users,dc=nova,dc=test',
  groupTreeDn: 'ou=groups,dc=nova,dc=test',
  userEnabledAttribute: 'userAccountControl',
  userEnabledMask: 2,
  userMemberOfAttribute: 'memberOf',
  domainId: 'ldap',
};

const ldapUser = (name: string, password: string, scope?: unknown) =>
  passwordAuth(name, password, scope, { name: 'ldap' });

describe('DomainRoutedBackend configuration and id routing', () => {
  const sqlDb = memoryDb() as unknown as Kysely<IdentityTables>;
  const sql = new SqlIdentityBackend(sqlDb);
  afterAll(() => sqlDb.destroy());
  const ldap = (over: Partial<LdapBackendOptions> = {}) =>
    new LdapIdentityBackend({ ...ldapOptions, ...over });
  const settingOf = (f: () => unknown): unknown => {
    try {
      f();
    } catch (e) {
      return isNovaError(e, ErrorCode.Configuration) ? (e.details as { setting: string }).setting : e;
    }
    return 'accepted';
  };

  it('refuses a directory of the Default domain and two directories of one domain', () => {
    expect(
      settingOf(
        () => new DomainRoutedBackend(sql, [{ domainName: 'x', backend: ldap({ domainId: 'default' }) }]),
      ),
    ).toBe('identity.directories');
    expect(
      settingOf(
        () =>
          new DomainRoutedBackend(sql, [
            { domainName: 'a', backend: ldap() },
            { domainName: 'b', backend: ldap() },
          ]),
      ),
    ).toBe('identity.directories');
    expect(settingOf(() => new DomainRoutedBackend(sql, [{ domainName: 'ldap', backend: ldap() }]))).toBe(
      'accepted',
    );
  });

  it('routes an id by its form alone: <domainId>~ to that directory, anything else to SQL', () => {
    const dir = ldap();
    const other = ldap({ domainId: 'corp' });
    const routed = new DomainRoutedBackend(sql, [
      { domainName: 'ldap', backend: dir },
      { domainName: 'corp', backend: other },
    ]);
    expect(routed.directoryDomainIds).toEqual(['ldap', 'corp']);
    const sqlId = '0123456789abcdef0123456789abcdef';
    expect(routed.ownerOf({ id: sqlId })).toBe(sql);
    expect(routed.ownerOf({ id: 'ldap~alice' }).kind).toBe('ldap');
    expect(routed.ownerOf({ id: 'ldap~alice' })).not.toBe(routed.ownerOf({ id: 'corp~alice' }));
    // a bare directory id, an unknown prefix or an empty local id are not a directory's
    for (const id of ['alice', 'nope~alice', 'ldap~', '~ldap~alice', `${sqlId}~x`])
      expect(routed.ownerOf({ id }), id).toBe(sql);
    expect(routed.ownerOf({ domainId: 'default' })).toBe(sql);
    expect(routed.ownerOf({ domainId: 'some-sql-domain' })).toBe(sql);
    expect(routed.ownerOf({ domainId: 'ldap' })).toBe(routed.ownerOf({ id: 'ldap~alice' }));
    expect(routed.ownerOf({ domainId: 'ldap' }).writable).toBe(false);
  });
});

describe('identity with an unreachable directory domain', () => {
  it('keeps the SQL admin working; the directory’s users get 503, not a 401', async () => {
    const down = await freeClosedPort();
    const h = await identityHarness({
      directories: [
        {
          domainName: 'ldap',
          backend: new LdapIdentityBackend({
            ...ldapOptions,
            url: `ldap://127.0.0.1:${down}`,
            connectTimeoutMs: 500,
          }),
        },
      ],
    });
    try {
      const admin = await h.adminToken();
      expect((await h.call(admin, { method: 'GET', url: '/v3/users' })).statusCode).toBe(200);
      expect(
        (
          await h.call(admin, {
            method: 'GET',
            url: '/v3/auth/tokens',
            headers: { 'x-subject-token': admin },
          })
        ).statusCode,
      ).toBe(200);
      const r = await h.call(null, {
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: ldapUser('alice', 'alice-secret', projectScope('admin')),
      });
      expect(r.statusCode).toBe(503);
      expect(r.body).not.toContain(ADMIN_PW);
      expect(r.body).not.toContain('alice-secret');
    } finally {
      await h.close();
    }
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function freeClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.skipIf(!available)('identity with domain `ldap` from slapd and Default in SQL', () => {
  let h: IdentityHarness;
  let db: Kysely<object>;
  let admin: string;
  let adminProjectId: string;
  let roleIds: Record<string, string>;
  const auth = (body: object) => h.call(null, { method: 'POST', url: '/v3/auth/tokens', payload: body });

  beforeAll(async () => {
    db = memoryDb();
    h = await identityHarness({
      db,
      directories: [{ domainName: 'ldap', backend: new LdapIdentityBackend(ldapOptions) }],
    });
    admin = await h.adminToken();
    adminProjectId = (await h.call(admin, { method: 'GET', url: '/v3/projects?name=admin' })).json()
      .projects[0].id;
    const roles = (await h.call(admin, { method: 'GET', url: '/v3/roles' })).json().roles as {
      id: string;
      name: string;
    }[];
    roleIds = Object.fromEntries(roles.map((r) => [r.name, r.id]));
  });
  afterAll(() => h?.close());

  it('creates the directory’s domain and lists its users by domain only', async () => {
    const domains = (await h.call(admin, { method: 'GET', url: '/v3/domains' })).json().domains;
    expect(domains.map((d: { id: string; name: string }) => [d.id, d.name])).toEqual([
      ['default', 'Default'],
      ['ldap', 'ldap'],
    ]);
    const users = (await h.call(admin, { method: 'GET', url: '/v3/users?domain_id=ldap' })).json().users;
    expect(users.map((u: { id: string }) => u.id).sort()).toEqual(['ldap~alice', 'ldap~bob', 'ldap~carol']);
    expect(users.find((u: { id: string }) => u.id === 'ldap~carol')).toMatchObject({
      name: 'carol',
      domain_id: 'ldap',
      enabled: false,
    });
    // unfiltered lists are the SQL backend's, as Keystone lists its default driver
    const all = (await h.call(admin, { method: 'GET', url: '/v3/users' })).json().users;
    expect(all.map((u: { name: string; domain_id: string }) => `${u.name}@${u.domain_id}`)).toEqual([
      'admin@default',
    ]);
    const byName = await h.call(admin, { method: 'GET', url: '/v3/users?name=alice&domain_id=ldap' });
    expect(byName.json().users).toEqual([expect.objectContaining({ id: 'ldap~alice', name: 'alice' })]);
    const groups = (await h.call(admin, { method: 'GET', url: '/v3/groups?domain_id=ldap' })).json().groups;
    expect(groups.map((g: { id: string }) => g.id)).toEqual(['ldap~developers', 'ldap~operators']);
  });

  it('lets the SQL admin grant an LDAP user a role, and the user log in with the directory password', async () => {
    const put = await h.call(admin, {
      method: 'PUT',
      url: `/v3/projects/${adminProjectId}/users/ldap~alice/roles/${roleIds.member}`,
    });
    expect(put.statusCode).toBe(204);

    const r = await auth(ldapUser('alice', 'alice-secret', projectScope('admin')));
    expect(r.statusCode).toBe(201);
    const token = r.json().token;
    expect(token.user).toMatchObject({
      id: 'ldap~alice',
      name: 'alice',
      domain: { id: 'ldap', name: 'ldap' },
    });
    expect(token.project).toMatchObject({ id: adminProjectId, name: 'admin' });
    expect(token.roles.map((x: { name: string }) => x.name).sort()).toEqual(['member', 'reader']);
    const subject = r.headers['x-subject-token'] as string;

    // the token validates (the user is found again by its public id) and works on the API
    const check = await h.call(admin, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': subject },
    });
    expect(check.statusCode).toBe(200);
    expect(check.json().token.user.id).toBe('ldap~alice');
    const own = await h.call(subject, { method: 'GET', url: '/v3/users/ldap~alice' });
    expect(own.statusCode).toBe(200);
    expect(own.json().user).toMatchObject({ id: 'ldap~alice', domain_id: 'ldap', email: 'alice@nova.test' });
    const projects = await h.call(subject, { method: 'GET', url: '/v3/users/ldap~alice/projects' });
    expect(projects.json().projects.map((p: { id: string }) => p.id)).toEqual([adminProjectId]);

    // by id too (as a re-authentication would name the user)
    const byId = await auth({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { id: 'ldap~alice', password: 'alice-secret' } },
        },
        scope: projectScope('admin'),
      },
    });
    expect(byId.statusCode).toBe(201);
    expect(h.logLines.join('\n')).not.toContain('alice-secret');
  });

  it('gives group role assignments through memberOf', async () => {
    const p = (
      await h.call(admin, {
        method: 'POST',
        url: '/v3/projects',
        payload: { project: { name: 'dev-project' } },
      })
    ).json().project;
    const groupsOfBob = await h.call(admin, { method: 'GET', url: '/v3/users/ldap~bob/groups' });
    expect(groupsOfBob.json().groups.map((g: { id: string }) => g.id)).toEqual([
      'ldap~developers',
      'ldap~operators',
    ]);
    expect(
      (await auth(ldapUser('bob', 'bob-secret', projectScope('dev-project')))).statusCode,
      'no role yet',
    ).toBe(401);

    const put = await h.call(admin, {
      method: 'PUT',
      url: `/v3/projects/${p.id}/groups/ldap~developers/roles/${roleIds.reader}`,
    });
    expect(put.statusCode).toBe(204);
    const r = await auth(ldapUser('bob', 'bob-secret', projectScope('dev-project')));
    expect(r.statusCode).toBe(201);
    expect(r.json().token.roles.map((x: { name: string }) => x.name)).toEqual(['reader']);
    // bob's role is the group's: operators-only members would not have it, nor the project admin
    expect((await auth(ldapUser('bob', 'bob-secret', projectScope('admin')))).statusCode).toBe(401);

    const effective = await h.call(admin, {
      method: 'GET',
      url: `/v3/role_assignments?scope.project.id=${p.id}&effective`,
    });
    expect(effective.statusCode).toBe(200);
    expect(
      effective
        .json()
        .role_assignments.map((a: { user: { id: string } }) => a.user.id)
        .sort(),
    ).toEqual(['ldap~alice', 'ldap~bob']);
    const members = await h.call(admin, { method: 'GET', url: '/v3/groups/ldap~developers/users' });
    expect(members.json().users.map((u: { id: string }) => u.id)).toEqual(['ldap~alice', 'ldap~bob']);
  });

  it('answers a disabled user, a wrong password and an unknown user with the identical 401', async () => {
    // carol is disabled in the directory; give her a role so only the directory can refuse her
    await h.call(admin, {
      method: 'PUT',
      url: `/v3/projects/${adminProjectId}/users/ldap~carol/roles/${roleIds.member}`,
    });
    const answers = await Promise.all([
      auth(ldapUser('carol', 'carol-secret', projectScope('admin'))),
      auth(ldapUser('alice', 'wrong-secret', projectScope('admin'))),
      auth(ldapUser('nobody', 'alice-secret', projectScope('admin'))),
      // alice's password is the directory's: the same name in Default is another user
      auth(passwordAuth('alice', 'alice-secret', projectScope('admin'))),
    ]);
    for (const a of answers) {
      expect(a.statusCode).toBe(401);
      expect(a.json()).toEqual(answers[0]!.json());
    }
    expect(answers[0]!.json().error.message).toBe('The request you have made requires authentication.');
  });

  it('refuses user and group writes in domain ldap with 403, and keeps them working in Default', async () => {
    const refused = [
      await h.call(admin, {
        method: 'POST',
        url: '/v3/users',
        payload: { user: { name: 'dave', domain_id: 'ldap', password: 'dave-secret-1' } },
      }),
      await h.call(admin, {
        method: 'POST',
        url: '/v3/groups',
        payload: { group: { name: 'g', domain_id: 'ldap' } },
      }),
      await h.call(admin, {
        method: 'PATCH',
        url: '/v3/users/ldap~alice',
        payload: { user: { enabled: false } },
      }),
      await h.call(admin, { method: 'DELETE', url: '/v3/users/ldap~bob' }),
      await h.call(admin, { method: 'DELETE', url: '/v3/groups/ldap~developers' }),
      await h.call(admin, { method: 'PUT', url: '/v3/groups/ldap~operators/users/ldap~alice' }),
    ];
    for (const r of refused) {
      expect(r.statusCode, r.body).toBe(403);
      expect(r.json().error).toMatchObject({ code: 403, message: 'LDAP does not support write operations' });
    }
    // nothing changed: alice still logs in, bob still exists, developers still has its members
    expect((await auth(ldapUser('alice', 'alice-secret', projectScope('admin')))).statusCode).toBe(201);
    expect((await h.call(admin, { method: 'GET', url: '/v3/users/ldap~bob' })).statusCode).toBe(200);

    const created = await h.call(admin, {
      method: 'POST',
      url: '/v3/users',
      payload: { user: { name: 'dave', domain_id: 'default', password: 'dave-secret-1' } },
    });
    expect(created.statusCode).toBe(201);
    const dave = created.json().user;
    expect(dave.id).toMatch(/^[0-9a-f]{32}$/);
    const group = (
      await h.call(admin, { method: 'POST', url: '/v3/groups', payload: { group: { name: 'sql-team' } } })
    ).json().group;
    expect(
      (await h.call(admin, { method: 'PUT', url: `/v3/groups/${group.id}/users/${dave.id}` })).statusCode,
    ).toBe(204);
    // a SQL group cannot hold a directory user (Keystone's CrossBackendNotAllowed)
    const cross = await h.call(admin, { method: 'PUT', url: `/v3/groups/${group.id}/users/ldap~alice` });
    expect(cross.statusCode).toBe(403);
    expect(cross.json().error.message).toMatch(/^Group membership across backend boundaries is not allowed/);
    expect(
      (await h.call(admin, { method: 'HEAD', url: `/v3/groups/${group.id}/users/ldap~alice` })).statusCode,
    ).toBe(404);
    expect(
      (await h.call(admin, { method: 'HEAD', url: '/v3/groups/ldap~developers/users/ldap~alice' }))
        .statusCode,
    ).toBe(204);
    const patched = await h.call(admin, {
      method: 'PATCH',
      url: `/v3/users/${dave.id}`,
      payload: { user: { description: 'SQL user' } },
    });
    expect(patched.statusCode).toBe(200);
    await h.call(admin, {
      method: 'PUT',
      url: `/v3/projects/${adminProjectId}/users/${dave.id}/roles/${roleIds.reader}`,
    });
    expect((await auth(passwordAuth('dave', 'dave-secret-1', projectScope('admin')))).statusCode).toBe(201);
  });

  it('never lets a directory id reach a SQL user, nor a bare directory id reach the directory', async () => {
    const adminId = (await h.call(admin, { method: 'GET', url: '/v3/users?name=admin' })).json().users[0].id;
    expect((await h.call(admin, { method: 'GET', url: `/v3/users/${adminId}` })).statusCode).toBe(200);
    for (const id of [`ldap~${adminId}`, 'alice', 'ldap~', 'nope~alice', 'ldap~nobody'])
      expect(
        (await h.call(admin, { method: 'GET', url: `/v3/users/${encodeURIComponent(id)}` })).statusCode,
        id,
      ).toBe(404);
  });

  it('reopens over the same database (the domain row is kept, assignments too) and refuses a renamed domain', async () => {
    const again = await openIdentity(db, {
      directories: [{ domainName: 'ldap', backend: new LdapIdentityBackend(ldapOptions) }],
    });
    try {
      const issued = await again.issue({
        identity: {
          methods: ['password'],
          password: { user: { name: 'alice', domain: { name: 'ldap' }, password: 'alice-secret' } },
        },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      });
      expect(issued.info.roles.map((r) => r.name)).toContain('member');
      expect(issued.info.user.id).toBe('ldap~alice');
    } finally {
      await again.close();
    }
    const renamed = await openIdentity(db, {
      directories: [{ domainName: 'corp', backend: new LdapIdentityBackend(ldapOptions) }],
    }).then(
      () => 'opened',
      (e: unknown) => (isNovaError(e, ErrorCode.Configuration) ? e.details.setting : e),
    );
    expect(renamed).toBe('identity.directories');
  });
});
