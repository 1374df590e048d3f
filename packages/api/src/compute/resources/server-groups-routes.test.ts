import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('os-server-groups', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness();
  });
  afterAll(() => h.close());

  const create = (token: string, server_group: Record<string, unknown>, headers = {}) =>
    h.call(token, { method: 'POST', url: '/v2.1/os-server-groups', payload: { server_group }, headers });
  const get = (token: string, url: string, headers = {}) => h.call(token, { method: 'GET', url, headers });

  it('creates with policies below 2.64 (user_id from 2.13) and policy + rules from 2.64', async () => {
    const old = await create('alice', { name: 'g-old', policies: ['anti-affinity'] });
    expect(old.statusCode).toBe(200);
    expect(old.json().server_group).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'g-old',
      policies: ['anti-affinity'],
      members: [],
      metadata: {},
    });
    const at13 = (
      await get('alice', `/v2.1/os-server-groups/${old.json().server_group.id}`, mv('2.13'))
    ).json();
    expect(at13.server_group).toMatchObject({ project_id: 'p1', user_id: 'alice-id', metadata: {} });
    const modern = await create(
      'alice',
      { name: 'g-new', policy: 'anti-affinity', rules: { max_server_per_host: 2 } },
      mv('2.64'),
    );
    expect(modern.json().server_group).toEqual({
      id: expect.any(String),
      name: 'g-new',
      policy: 'anti-affinity',
      rules: { max_server_per_host: 2 },
      members: [],
      project_id: 'p1',
      user_id: 'alice-id',
    });
    const shownOld = (await get('alice', `/v2.1/os-server-groups/${modern.json().server_group.id}`)).json();
    expect(shownOld.server_group.policies).toEqual(['anti-affinity']);
    expect((await h.services.engine.serverGroups.get(modern.json().server_group.id))?.policy).toBe(
      'anti-affinity',
    );
  });

  it('refuses bad input naming the field', async () => {
    expect((await create('alice', { name: 'x', policies: ['soft-affinity'] })).statusCode).toBe(400);
    expect((await create('alice', { name: 'x', policies: ['soft-affinity'] }, mv('2.15'))).statusCode).toBe(
      200,
    );
    const two = await create('alice', { name: 'x', policies: ['affinity', 'anti-affinity'] });
    expect(two.json().badRequest.message).toContain('body.server_group.policies');
    const oldAt64 = await create('alice', { name: 'x', policies: ['affinity'] }, mv('2.64'));
    expect(oldAt64.statusCode).toBe(400);
    const rules = await create(
      'alice',
      { name: 'x', policy: 'affinity', rules: { max_server_per_host: 2 } },
      mv('2.64'),
    );
    expect(rules.json().badRequest.message).toContain('rules');
    const zero = await create(
      'alice',
      { name: 'x', policy: 'anti-affinity', rules: { max_server_per_host: 0 } },
      mv('2.64'),
    );
    expect(zero.json().badRequest.message).toContain('body.server_group.rules.max_server_per_host');
    const nul = await create('alice', { name: 'a\u0000', policies: ['affinity'] });
    expect(nul.json().badRequest.message).toContain('body.server_group.name');
    expect((await create('rita', { name: 'r', policies: ['affinity'] })).statusCode).toBe(403);
  });

  it('isolates projects: bob sees none of p1’s groups (404), admins list all projects', async () => {
    const g = (await create('alice', { name: 'mine', policies: ['affinity'] })).json().server_group;
    expect((await get('bob', `/v2.1/os-server-groups/${g.id}`)).statusCode).toBe(404);
    expect(
      (await h.call('bob', { method: 'DELETE', url: `/v2.1/os-server-groups/${g.id}` })).statusCode,
    ).toBe(404);
    expect((await get('bob', '/v2.1/os-server-groups?all_projects=True')).json().server_groups).toEqual([]);
    const mine = (await get('rita', '/v2.1/os-server-groups')).json().server_groups;
    expect(mine.map((x: { name: string }) => x.name)).toContain('mine');
    expect((await get('admin', '/v2.1/os-server-groups')).json().server_groups).toEqual([]);
    const all = (await get('admin', '/v2.1/os-server-groups?all_projects=True')).json().server_groups;
    expect(all.length).toBe(mine.length);
    const page = (await get('rita', '/v2.1/os-server-groups?limit=1&offset=1')).json().server_groups;
    expect(page).toEqual([mine[1]]);
    expect((await get('rita', '/v2.1/os-server-groups?limit=-1')).statusCode).toBe(400);
    expect(
      (await h.call('alice', { method: 'DELETE', url: `/v2.1/os-server-groups/${g.id}` })).statusCode,
    ).toBe(204);
    expect((await get('alice', `/v2.1/os-server-groups/${g.id}`)).statusCode).toBe(404);
  });

  it('counts groups against the server_groups quota', async () => {
    await h.call('admin', {
      method: 'PUT',
      url: '/v2.1/os-quota-sets/p2',
      payload: { quota_set: { server_groups: 1 } },
    });
    expect((await create('bob', { name: 'b1', policies: ['affinity'] })).statusCode).toBe(200);
    const over = await create('bob', { name: 'b2', policies: ['affinity'] });
    expect(over.statusCode).toBe(403);
    expect(over.json().forbidden.message).toContain('Quota exceeded');
  });
});
