import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityHarness, identityHarness, projectScope, seedMember } from './identity.test-helper.js';

describe('identity: /v3/projects and /v3/domains', () => {
  let h: IdentityHarness;
  let admin: string;
  let alice: string;
  let aliceProject: string;
  beforeAll(async () => {
    h = await identityHarness();
    admin = await h.adminToken();
    aliceProject = (await seedMember(h, admin, 'alice', 'pw-alice-1', 'p1')).projectId;
    alice = await h.login('alice', 'pw-alice-1', projectScope('p1'));
  });
  afterAll(() => h.close());

  const create = (token: string, project: Record<string, unknown>) =>
    h.call(token, { method: 'POST', url: '/v3/projects', payload: { project } });

  it('creates a project in Keystone’s shape and refuses a duplicate name with 409', async () => {
    const r = await create(admin, { name: 'web', description: 'the web team', enabled: true });
    expect(r.statusCode).toBe(201);
    const p = r.json().project;
    expect(p).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'web',
      domain_id: 'default',
      description: 'the web team',
      enabled: true,
      parent_id: 'default',
      is_domain: false,
      tags: [],
      options: {},
      links: { self: `http://127.0.0.1:8774/v3/projects/${p.id}` },
    });
    const dup = await create(admin, { name: 'web' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toEqual({
      error: {
        code: 409,
        message:
          'Conflict occurred attempting to store project - Duplicate entry found with name web at domain ID default.',
        title: 'Conflict',
      },
    });
    expect((await create(admin, { name: 'x', domain_id: 'nope' })).statusCode).toBe(404);
    expect((await create(admin, { name: 'x', is_domain: true })).statusCode).toBe(400);
  });

  it('lists with filters and resolves a name the way the clients do (GET by id 404, then ?name=)', async () => {
    await create(admin, { name: 'off', enabled: false });
    const all = await h.call(admin, { method: 'GET', url: '/v3/projects' });
    expect(all.statusCode).toBe(200);
    expect(all.json().links).toEqual({
      self: 'http://127.0.0.1:8774/v3/projects',
      previous: null,
      next: null,
    });
    const names = all.json().projects.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['admin', 'p1', 'off']));
    const disabled = await h.call(admin, { method: 'GET', url: '/v3/projects?enabled=false' });
    expect(disabled.json().projects.map((p: { name: string }) => p.name)).toEqual(['off']);
    expect(
      (await h.call(admin, { method: 'GET', url: '/v3/projects?domain_id=other' })).json().projects,
    ).toEqual([]);
    const byId = await h.call(admin, { method: 'GET', url: '/v3/projects/p1' });
    expect(byId.statusCode).toBe(404);
    expect(byId.json().error).toEqual({
      code: 404,
      message: 'Could not find project: p1.',
      title: 'Not Found',
    });
    const byName = await h.call(admin, { method: 'GET', url: '/v3/projects?name=p1' });
    expect(byName.json().projects).toHaveLength(1);
    expect(byName.json().links.self).toBe('http://127.0.0.1:8774/v3/projects?name=p1');
    const shown = await h.call(admin, { method: 'GET', url: `/v3/projects/${byName.json().projects[0].id}` });
    expect(shown.json().project.name).toBe('p1');
  });

  it('updates and deletes; a disabled or deleted project’s tokens stop working', async () => {
    const p = (await create(admin, { name: 'temp' })).json().project;
    const { userId } = await seedMember(h, admin, 'tina', 'pw-tina-1', 'temp');
    const tina = await h.login('tina', 'pw-tina-1', projectScope('temp'));
    expect((await h.call(tina, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(200);
    const patched = await h.call(admin, {
      method: 'PATCH',
      url: `/v3/projects/${p.id}`,
      payload: { project: { description: 'changed', enabled: false } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().project).toMatchObject({ description: 'changed', enabled: false });
    expect((await h.call(tina, { method: 'GET', url: `/v3/users/${userId}` })).statusCode).toBe(401);
    expect((await h.call(admin, { method: 'DELETE', url: `/v3/projects/${p.id}` })).statusCode).toBe(204);
    expect((await h.call(admin, { method: 'GET', url: `/v3/projects/${p.id}` })).statusCode).toBe(404);
    expect((await h.call(admin, { method: 'DELETE', url: `/v3/projects/${p.id}` })).statusCode).toBe(404);
  });

  it('keeps a member to its own project: no listing, no other project, no writes', async () => {
    const list = await h.call(alice, { method: 'GET', url: '/v3/projects' });
    expect(list.statusCode).toBe(403);
    expect(list.json().error).toEqual({
      code: 403,
      message: 'You are not authorized to perform the requested action: identity:list_projects.',
      title: 'Forbidden',
    });
    expect((await h.call(alice, { method: 'GET', url: `/v3/projects/${aliceProject}` })).statusCode).toBe(
      200,
    );
    const adminProject = (await h.call(admin, { method: 'GET', url: '/v3/projects?name=admin' })).json()
      .projects[0];
    expect((await h.call(alice, { method: 'GET', url: `/v3/projects/${adminProject.id}` })).statusCode).toBe(
      403,
    );
    expect((await h.call(alice, { method: 'GET', url: '/v3/projects/no-such-id' })).statusCode).toBe(403);
    expect((await create(alice, { name: 'mine' })).statusCode).toBe(403);
    expect(
      (
        await h.call(alice, {
          method: 'PATCH',
          url: `/v3/projects/${aliceProject}`,
          payload: { project: { name: 'renamed' } },
        })
      ).statusCode,
    ).toBe(403);
    expect((await h.call(alice, { method: 'DELETE', url: `/v3/projects/${aliceProject}` })).statusCode).toBe(
      403,
    );
    const me = (
      await h.call(alice, { method: 'GET', url: '/v3/auth/tokens', headers: { 'x-subject-token': alice } })
    ).json().token.user.id;
    const mine = await h.call(alice, { method: 'GET', url: `/v3/users/${me}/projects` });
    expect(mine.statusCode).toBe(200);
    expect(mine.json().projects.map((p: { id: string }) => p.id)).toEqual([aliceProject]);
    expect((await h.call(null, { method: 'GET', url: '/v3/projects' })).statusCode).toBe(401);
  });

  it('refuses hostile names and descriptions with a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'a\u0000b' }, 'body.project.name'],
      [{ name: 'tab\there' }, 'body.project.name'],
      [{ name: 'esc\u001b[31m' }, 'body.project.name'],
      [{ name: 'x'.repeat(65) }, 'body.project.name'],
      [{ name: '' }, 'body.project.name'],
      [{ name: 42 }, 'body.project.name'],
      [{ name: 'ok', description: 'bad\u0000' }, 'body.project.description'],
      [{ name: 'ok', enabled: 'yes' }, 'body.project.enabled'],
      [{ name: 'ok', domain_id: 'd\u0001' }, 'body.project.domain_id'],
    ];
    for (const [project, field] of cases) {
      const r = await create(admin, project);
      expect(r.statusCode, JSON.stringify(project).slice(0, 60)).toBe(400);
      expect(r.json().error.message).toContain(field);
    }
    // shell, SQL and markup metacharacters are stored as they are and come back unchanged
    const odd = `'; drop table identity_project; -- <b>$(rm -rf /)</b> "x" & ✓`.slice(0, 64);
    const r = await create(admin, { name: odd, description: 'multi\nline\ttext' });
    expect(r.statusCode).toBe(201);
    const back = await h.call(admin, { method: 'GET', url: `/v3/projects?name=${encodeURIComponent(odd)}` });
    expect(back.json().projects[0].name).toBe(odd);
    expect(back.json().projects[0].description).toBe('multi\nline\ttext');
    expect(
      (await h.call(admin, { method: 'GET', url: `/v3/projects?name=${encodeURIComponent('a\u0000')}` }))
        .statusCode,
    ).toBe(400);
    expect((await h.call(admin, { method: 'GET', url: '/v3/projects/%00%01' })).statusCode).toBe(404);
  });

  it('lists and shows domains', async () => {
    const list = await h.call(admin, { method: 'GET', url: '/v3/domains' });
    expect(list.statusCode).toBe(200);
    expect(list.json().domains).toEqual([
      {
        id: 'default',
        name: 'Default',
        description: 'The default domain',
        enabled: true,
        tags: [],
        options: {},
        links: { self: 'http://127.0.0.1:8774/v3/domains/default' },
      },
    ]);
    expect(
      (await h.call(admin, { method: 'GET', url: '/v3/domains?name=Default' })).json().domains,
    ).toHaveLength(1);
    expect((await h.call(alice, { method: 'GET', url: '/v3/domains/default' })).statusCode).toBe(200);
    expect((await h.call(alice, { method: 'GET', url: '/v3/domains' })).statusCode).toBe(403);
    expect((await h.call(admin, { method: 'GET', url: '/v3/domains/nope' })).statusCode).toBe(404);
  });
});
