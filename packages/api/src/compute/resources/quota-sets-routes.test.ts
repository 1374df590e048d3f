import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('os-quota-sets and limits', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness();
    await h.services.engine.create(h.cloud.request({ projectId: 'p1' }));
  });
  afterAll(() => h.close());

  const call = (
    method: 'GET' | 'PUT' | 'DELETE',
    url: string,
    payload?: unknown,
    token = 'admin',
    headers = {},
  ) =>
    h.call(token, { method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const put = (quota_set: Record<string, unknown>, headers = {}, token = 'admin') =>
    call('PUT', '/v2.1/os-quota-sets/p1', { quota_set }, token, headers);

  it('shows every Nova key at 2.1 (network and personality keys go at 2.36 and 2.57)', async () => {
    const r = await call('GET', '/v2.1/os-quota-sets/p1', undefined, 'rita');
    expect(r.statusCode).toBe(200);
    expect(r.json().quota_set).toEqual({
      id: 'p1',
      cores: 400,
      fixed_ips: -1,
      floating_ips: -1,
      injected_file_content_bytes: 10240,
      injected_file_path_bytes: 255,
      injected_files: 5,
      instances: 100,
      key_pairs: 100,
      metadata_items: 128,
      ram: 1_000_000,
      security_group_rules: -1,
      security_groups: -1,
      server_group_members: 10,
      server_groups: 10,
    });
    const at36 = (await call('GET', '/v2.1/os-quota-sets/p1', undefined, 'alice', mv('2.36'))).json()
      .quota_set;
    expect(at36).not.toHaveProperty('floating_ips');
    expect(at36).toHaveProperty('injected_files');
    const at57 = (await call('GET', '/v2.1/os-quota-sets/p1', undefined, 'alice', mv('2.57'))).json()
      .quota_set;
    expect(Object.keys(at57).sort()).toEqual([
      'cores',
      'id',
      'instances',
      'key_pairs',
      'metadata_items',
      'ram',
      'server_group_members',
      'server_groups',
    ]);
  });

  it('isolates projects: bob cannot read p1’s quota; only admins update or delete', async () => {
    expect((await call('GET', '/v2.1/os-quota-sets/p1', undefined, 'bob')).statusCode).toBe(403);
    expect((await call('GET', '/v2.1/os-quota-sets/p1/detail', undefined, 'bob')).statusCode).toBe(403);
    expect((await put({ instances: 5 }, {}, 'alice')).statusCode).toBe(403);
    expect((await call('DELETE', '/v2.1/os-quota-sets/p1', undefined, 'alice')).statusCode).toBe(403);
    expect(
      (await call('GET', '/v2.1/os-quota-sets/p1/defaults', undefined, 'bob')).json().quota_set.instances,
    ).toBe(100);
  });

  it('updates engine and API keys; detail shows usage; the engine enforces the new limit', async () => {
    const r = await put({ instances: '2', key_pairs: 3, ram: -1 });
    expect(r.statusCode).toBe(200);
    expect(r.json().quota_set).toMatchObject({ instances: 2, key_pairs: 3, ram: -1 });
    expect(r.json().quota_set).not.toHaveProperty('id');
    expect((await h.services.engine.quotas.get('p1')).limits).toMatchObject({ instances: 2, ramMb: -1 });
    const detail = (await call('GET', '/v2.1/os-quota-sets/p1/detail', undefined, 'alice')).json().quota_set;
    expect(detail.instances).toEqual({ in_use: 1, limit: 2, reserved: 0 });
    expect(detail.cores).toEqual({ in_use: 1, limit: 400, reserved: 0 });
    await h.services.engine.create(h.cloud.request({ projectId: 'p1' }));
    await expect(h.services.engine.create(h.cloud.request({ projectId: 'p1' }))).rejects.toMatchObject({
      code: 'NLFS_QUOTA_EXCEEDED',
    });
  });

  it('refuses a limit below usage unless forced, and hostile values naming the field', async () => {
    const below = await put({ instances: 1 });
    expect(below.statusCode).toBe(400);
    expect(below.json().badRequest.message).toContain('already used and reserved 2');
    expect((await put({ instances: 1, force: true })).json().quota_set.instances).toBe(1);
    for (const [body, field] of [
      [{ instances: -2 }, 'instances'],
      [{ cores: 1.5 }, 'cores'],
      [{ cores: '1; DROP TABLE x' }, 'cores'],
      [{ ram: 2 ** 40 }, 'ram'],
      [{ bogus: 1 }, 'bogus'],
      [{ force: 'maybe' }, 'force'],
    ] as const) {
      const r = await put(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().badRequest.message).toContain(field);
    }
    expect((await put({ floating_ips: 5 }, mv('2.36'))).statusCode).toBe(400);
    expect((await put({ injected_files: 1 }, mv('2.57'))).statusCode).toBe(400);
    expect((await call('GET', '/v2.1/os-quota-sets/bad%20id')).statusCode).toBe(400);
  });

  it('limits: the caller’s project per microversion, another project’s for admins only', async () => {
    const old = (await call('GET', '/v2.1/limits', undefined, 'alice')).json().limits;
    expect(old.rate).toEqual([]);
    expect(old.absolute).toMatchObject({
      maxTotalInstances: 1,
      maxTotalKeypairs: 3,
      maxTotalRAMSize: -1,
      totalInstancesUsed: 2,
      totalCoresUsed: 2,
      totalRAMUsed: 4096,
      maxPersonality: 5,
      maxSecurityGroups: -1,
      maxImageMeta: 128,
    });
    const at73 = (await call('GET', '/v2.1/limits', undefined, 'alice', mv('2.73'))).json().limits.absolute;
    expect(Object.keys(at73).sort()).toEqual(
      [
        'maxServerGroupMembers',
        'maxServerGroups',
        'maxServerMeta',
        'maxTotalCores',
        'maxTotalInstances',
        'maxTotalKeypairs',
        'maxTotalRAMSize',
        'totalCoresUsed',
        'totalInstancesUsed',
        'totalRAMUsed',
        'totalServerGroupsUsed',
      ].sort(),
    );
    expect((await call('GET', '/v2.1/limits?tenant_id=p1', undefined, 'bob')).statusCode).toBe(403);
    const forP1 = (await call('GET', '/v2.1/limits?tenant_id=p1')).json().limits.absolute;
    expect(forP1.totalInstancesUsed).toBe(2);
    expect(
      (await call('GET', '/v2.1/limits', undefined, 'bob')).json().limits.absolute.totalInstancesUsed,
    ).toBe(0);
  });

  it('delete reverts to the defaults (202)', async () => {
    expect((await call('DELETE', '/v2.1/os-quota-sets/p1')).statusCode).toBe(202);
    const q = (await call('GET', '/v2.1/os-quota-sets/p1')).json().quota_set;
    expect(q).toMatchObject({ instances: 100, ram: 1_000_000, key_pairs: 100 });
  });
});
