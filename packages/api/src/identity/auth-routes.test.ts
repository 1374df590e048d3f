import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  type IdentityHarness,
  identityHarness,
  passwordAuth,
  projectScope,
} from './identity.test-helper.js';

const keystoneTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe('identity: /v3 and /v3/auth', () => {
  let h: IdentityHarness;
  beforeAll(async () => {
    h = await identityHarness();
  });
  afterAll(() => h.close());

  const issue = (body: unknown, url = '/v3/auth/tokens') =>
    h.call(null, { method: 'POST', url, payload: body as Record<string, unknown> });

  it('serves the version document without a token', async () => {
    for (const url of ['/v3', '/v3/']) {
      const r = await h.call(null, { method: 'GET', url });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({
        version: {
          id: 'v3.14',
          status: 'stable',
          updated: '2020-04-07T00:00:00Z',
          links: [{ rel: 'self', href: 'http://127.0.0.1:8774/v3/' }],
          'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
        },
      });
    }
  });

  it('documents every identity route in /openapi.json', async () => {
    const doc = (await h.call(null, { method: 'GET', url: '/openapi.json' })).json();
    for (const path of [
      '/v3/auth/tokens',
      '/v3/projects/{projectId}',
      '/v3/role_assignments',
      '/v3/users/{userId}/password',
    ])
      expect(doc.paths).toHaveProperty([path]);
    expect(doc.paths['/v3/auth/tokens'].post.requestBody).toBeDefined();
    expect(doc.paths['/v3/users'].get['x-policy-rules']).toEqual(['identity:list_users']);
  });

  it('issues a project-scoped token in Keystone’s shape, with the catalog', async () => {
    const r = await issue(passwordAuth('admin', adminPassword, projectScope('admin')));
    expect(r.statusCode).toBe(201);
    expect(r.headers['x-subject-token']).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(r.headers['content-type']).toContain('application/json');
    const token = r.json().token;
    expect(Object.keys(token).sort()).toEqual(
      [
        'audit_ids',
        'catalog',
        'expires_at',
        'is_domain',
        'issued_at',
        'methods',
        'project',
        'roles',
        'user',
      ].sort(),
    );
    expect(token.methods).toEqual(['password']);
    expect(token.user).toEqual({
      domain: { id: 'default', name: 'Default' },
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'admin',
      password_expires_at: null,
    });
    expect(token.project).toEqual({
      domain: { id: 'default', name: 'Default' },
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'admin',
    });
    expect(token.is_domain).toBe(false);
    expect(token.audit_ids).toHaveLength(1);
    expect(token.audit_ids[0]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(token.expires_at).toMatch(keystoneTime);
    expect(token.issued_at).toMatch(keystoneTime);
    expect(Date.parse(token.expires_at)).toBeGreaterThan(h.clock.now + 120_000);
    expect(token.roles.map((x: { name: string }) => x.name).sort()).toEqual(['admin', 'member', 'reader']);
    for (const role of token.roles) expect(Object.keys(role).sort()).toEqual(['id', 'name']);
    expect(token.catalog.map((c: { type: string; name: string }) => [c.type, c.name])).toEqual([
      ['compute', 'nova'],
      ['image', 'glance'],
      ['identity', 'keystone'],
    ]);
    const urls: Record<string, string> = {
      compute: 'http://127.0.0.1:8774/v2.1',
      image: 'http://127.0.0.1:8774/image',
      identity: 'http://127.0.0.1:8774/v3',
    };
    for (const service of token.catalog) {
      expect(service.id).toMatch(/^[0-9a-f]{32}$/);
      expect(service.endpoints.map((e: { interface: string }) => e.interface)).toEqual([
        'public',
        'internal',
        'admin',
      ]);
      for (const e of service.endpoints)
        expect(e).toEqual({
          id: expect.stringMatching(/^[0-9a-f]{32}$/),
          interface: expect.any(String),
          region_id: 'RegionOne',
          region: 'RegionOne',
          url: urls[service.type],
        });
    }
    // the ids are stable: a second token has the very same catalog
    const again = await issue(passwordAuth('admin', adminPassword, projectScope('admin')));
    expect(again.json().token.catalog).toEqual(token.catalog);
  });

  it('issues by user id and project id too, and omits the catalog with ?nocatalog', async () => {
    const first = (await issue(passwordAuth('admin', adminPassword, projectScope('admin')))).json().token;
    const r = await issue(
      {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { id: first.user.id, password: adminPassword } },
          },
          scope: { project: { id: first.project.id } },
        },
      },
      '/v3/auth/tokens?nocatalog',
    );
    expect(r.statusCode).toBe(201);
    expect(r.json().token.project.id).toBe(first.project.id);
    expect(r.json().token).not.toHaveProperty('catalog');
  });

  it('issues an unscoped token as Keystone: no roles, no catalog', async () => {
    for (const scope of [undefined, 'unscoped']) {
      const r = await issue(passwordAuth('admin', adminPassword, scope));
      expect(r.statusCode).toBe(201);
      expect(Object.keys(r.json().token).sort()).toEqual(
        ['audit_ids', 'expires_at', 'issued_at', 'methods', 'user'].sort(),
      );
    }
  });

  it('answers a wrong password, an unknown user and a disabled user with one identical 401', async () => {
    const admin = await h.adminToken();
    const created = await h.call(admin, {
      method: 'POST',
      url: '/v3/users',
      payload: { user: { name: 'off', password: 'pw-off-1', enabled: false } },
    });
    expect(created.statusCode).toBe(201);
    const answers = await Promise.all([
      issue(passwordAuth('admin', 'not-the-password', projectScope('admin'))),
      issue(passwordAuth('no-such-user', adminPassword, projectScope('admin'))),
      issue(passwordAuth('off', 'pw-off-1', projectScope('admin'))),
      issue(passwordAuth('admin', adminPassword, projectScope('admin'), { name: 'NoSuchDomain' })),
    ]);
    for (const r of answers) {
      expect(r.statusCode).toBe(401);
      expect(r.json()).toEqual({
        error: {
          code: 401,
          message: 'The request you have made requires authentication.',
          title: 'Unauthorized',
        },
      });
      expect(r.headers['www-authenticate']).toBe('Keystone uri="http://127.0.0.1:8774/v3"');
      expect(r.headers['x-subject-token']).toBeUndefined();
    }
    expect(new Set(answers.map((r) => r.body)).size).toBe(1);
  });

  it('refuses a scope the user has no role on with 401', async () => {
    const admin = await h.adminToken();
    await h.call(admin, { method: 'POST', url: '/v3/projects', payload: { project: { name: 'norole' } } });
    await h.call(admin, {
      method: 'POST',
      url: '/v3/users',
      payload: { user: { name: 'lonely', password: 'pw-lonely-1' } },
    });
    for (const scope of [projectScope('norole'), projectScope('admin'), projectScope('no-such-project')]) {
      const r = await issue(passwordAuth('lonely', 'pw-lonely-1', scope));
      expect(r.statusCode).toBe(401);
    }
    expect((await issue(passwordAuth('lonely', 'pw-lonely-1'))).statusCode).toBe(201);
  });

  it('re-scopes with the token method', async () => {
    const unscoped = (await issue(passwordAuth('admin', adminPassword))).headers['x-subject-token'] as string;
    const r = await issue({
      auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: projectScope('admin') },
    });
    expect(r.statusCode).toBe(201);
    expect(r.json().token.methods).toEqual(['token', 'password']);
    expect(r.json().token.project.name).toBe('admin');
    const bad = await issue({ auth: { identity: { methods: ['token'], token: { id: 'garbage' } } } });
    expect(bad.statusCode).toBe(401);
  });

  it('validates (GET, HEAD) and revokes (DELETE) a subject token; a revoked one is 404, then 401', async () => {
    const admin = await h.adminToken();
    const subject = (await issue(passwordAuth('admin', adminPassword, projectScope('admin')))).headers[
      'x-subject-token'
    ] as string;
    const got = await h.call(admin, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': subject },
    });
    expect(got.statusCode).toBe(200);
    expect(got.headers['x-subject-token']).toBe(subject);
    expect(got.json().token.project.name).toBe('admin');
    expect(got.json().token.catalog).toHaveLength(3);
    const head = await h.call(admin, {
      method: 'HEAD',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': subject },
    });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    const del = await h.call(admin, {
      method: 'DELETE',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': subject },
    });
    expect(del.statusCode).toBe(204);
    const after = await h.call(admin, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': subject },
    });
    expect(after.statusCode).toBe(404);
    expect(after.json().error).toMatchObject({ code: 404, title: 'Not Found' });
    const used = await h.call(subject, { method: 'GET', url: '/v3/auth/catalog' });
    expect(used.statusCode).toBe(401);
    const missing = await h.call(admin, { method: 'GET', url: '/v3/auth/tokens' });
    expect(missing.statusCode).toBe(404);
  });

  it('lets a user validate and revoke its own token but not another user’s', async () => {
    const admin = await h.adminToken();
    const p = (
      await h.call(admin, { method: 'POST', url: '/v3/projects', payload: { project: { name: 'own' } } })
    ).json().project;
    const u = (
      await h.call(admin, {
        method: 'POST',
        url: '/v3/users',
        payload: { user: { name: 'self', password: 'pw-self-1' } },
      })
    ).json().user;
    const member = (await h.call(admin, { method: 'GET', url: '/v3/roles?name=member' })).json().roles[0];
    expect(
      (await h.call(admin, { method: 'PUT', url: `/v3/projects/${p.id}/users/${u.id}/roles/${member.id}` }))
        .statusCode,
    ).toBe(204);
    const mine = await h.login('self', 'pw-self-1', projectScope('own'));
    const other = await h.adminToken();
    const self = await h.call(mine, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': mine },
    });
    expect(self.statusCode).toBe(200);
    const foreign = await h.call(mine, {
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': other },
    });
    expect(foreign.statusCode).toBe(403);
    const revokeOther = await h.call(mine, {
      method: 'DELETE',
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': other },
    });
    expect(revokeOther.statusCode).toBe(403);
    expect((await h.call(other, { method: 'GET', url: '/v3/auth/catalog' })).statusCode).toBe(200);
  });

  it('lists the caller’s catalog, projects, domains and system access', async () => {
    const admin = await h.adminToken();
    const catalog = await h.call(admin, { method: 'GET', url: '/v3/auth/catalog' });
    expect(catalog.statusCode).toBe(200);
    expect(catalog.json().catalog).toHaveLength(3);
    expect(catalog.json().links.self).toBe('http://127.0.0.1:8774/v3/auth/catalog');
    const projects = await h.call(admin, { method: 'GET', url: '/v3/auth/projects' });
    expect(projects.json().projects.map((p: { name: string }) => p.name)).toContain('admin');
    expect(projects.json().links).toEqual({
      self: 'http://127.0.0.1:8774/v3/auth/projects',
      previous: null,
      next: null,
    });
    expect((await h.call(admin, { method: 'GET', url: '/v3/auth/domains' })).json().domains).toEqual([]);
    expect((await h.call(admin, { method: 'GET', url: '/v3/auth/system' })).json().system).toEqual([
      { all: true },
    ]);
    const unscoped = (await issue(passwordAuth('admin', adminPassword))).headers['x-subject-token'] as string;
    const refused = await h.call(unscoped, { method: 'GET', url: '/v3/auth/catalog' });
    expect(refused.statusCode).toBe(403);
    expect((await h.call(unscoped, { method: 'GET', url: '/v3/auth/projects' })).statusCode).toBe(200);
  });

  it('refuses malformed and hostile token requests with a 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'body.auth'],
      [{ auth: { identity: { methods: ['kerberos'] } } }, 'body.auth.identity.methods.0'],
      [passwordAuth('ad\u0000min', adminPassword), 'body.auth.identity.password.user.name'],
      [passwordAuth('ad\u001bmin', adminPassword), 'body.auth.identity.password.user.name'],
      [passwordAuth('a'.repeat(300), adminPassword), 'body.auth.identity.password.user.name'],
      [passwordAuth('admin', 'x'.repeat(5000)), 'body.auth.identity.password.user.password'],
      [
        passwordAuth('admin', adminPassword, { project: { name: 'a\u0007', domain: { id: 'default' } } }),
        'body.auth.scope.project.name',
      ],
      [{ auth: { identity: { methods: ['password'] } } }, 'body.auth.identity.password'],
    ];
    for (const [body, field] of cases) {
      const r = await issue(body);
      expect(r.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json().error.code).toBe(400);
      expect(r.json().error.title).toBe('Bad Request');
      expect(r.json().error.message).toContain(field);
    }
  });

  it('never answers or logs a password', async () => {
    const secret = 'pw-Never-Shown-42';
    const admin = await h.adminToken();
    const created = await h.call(admin, {
      method: 'POST',
      url: '/v3/users',
      payload: { user: { name: 'quiet', password: secret, email: 'q@example.org' } },
    });
    const id = created.json().user.id;
    const responses = [
      created,
      await h.call(admin, { method: 'GET', url: `/v3/users/${id}` }),
      await h.call(admin, { method: 'GET', url: '/v3/users' }),
      await h.call(admin, {
        method: 'PATCH',
        url: `/v3/users/${id}`,
        payload: { user: { password: `${secret}-2` } },
      }),
      await issue(passwordAuth('quiet', `${secret}-2`)),
      await issue(passwordAuth('quiet', secret)),
      await issue(passwordAuth('admin', adminPassword, projectScope('admin'))),
      await h.call(null, {
        method: 'POST',
        url: `/v3/users/${id}/password`,
        payload: { user: { original_password: `${secret}-2`, password: `${secret}-3` } },
      }),
    ];
    for (const r of responses) {
      expect(r.statusCode).toBeLessThan(500);
      const text = r.body + JSON.stringify(r.headers);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(adminPassword);
      expect(text).not.toMatch(/"password":|password_hash|scrypt\$/);
    }
    expect(h.logLines.length).toBeGreaterThan(0);
    const log = h.logLines.join('\n');
    expect(log).toContain('/v3/auth/tokens'); // the requests were logged
    expect(log).not.toContain(secret);
    expect(log).not.toContain(adminPassword);
  });
});
