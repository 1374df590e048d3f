import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('version documents', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness();
  });
  afterAll(() => h.close());

  it('serves / (300) and /v2.1 without a token, advertising 2.1-2.73', async () => {
    const root = await h.call(null, { method: 'GET', url: '/' });
    expect(root.statusCode).toBe(300);
    expect(root.json().versions.map((x: { id: string }) => x.id)).toEqual(['v2.0', 'v2.1']);
    expect(root.json().versions[1].links[0].href).toBe('http://127.0.0.1:8774/v2.1/');
    for (const url of ['/v2.1', '/v2.1/']) {
      const r = await h.call(null, { method: 'GET', url });
      expect(r.statusCode).toBe(200);
      expect(r.json().version).toMatchObject({
        id: 'v2.1',
        version: '2.73',
        min_version: '2.1',
        status: 'CURRENT',
      });
      expect(r.json().version['media-types'][0].type).toBe(
        'application/vnd.openstack.compute+json;version=2.1',
      );
      expect(r.headers['x-openstack-nova-api-version']).toBe('2.1');
    }
  });
});

describe('flavors', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness();
  });
  afterAll(() => h.close());

  const create = (token: string, flavor: Record<string, unknown>, headers = {}) =>
    h.call(token, { method: 'POST', url: '/v2.1/flavors', payload: { flavor }, headers });

  it('lists the seeded flavors in Nova’s shape per microversion', async () => {
    const old = (await h.call('alice', { method: 'GET', url: '/v2.1/flavors/detail?is_public=True' })).json();
    const small = old.flavors.find((f: { name: string }) => f.name === 'm1.small');
    expect(small).toMatchObject({
      ram: 2048,
      vcpus: 1,
      swap: '',
      'OS-FLV-EXT-DATA:ephemeral': 0,
      'os-flavor-access:is_public': true,
      rxtx_factor: 1,
    });
    expect(small).not.toHaveProperty('description');
    expect(small).not.toHaveProperty('extra_specs');
    expect(small.links[0].href).toBe(`http://127.0.0.1:8774/v2.1/flavors/${small.id}`);
    const at55 = (
      await h.call('alice', { method: 'GET', url: '/v2.1/flavors/detail', headers: mv('2.55') })
    ).json();
    expect(at55.flavors[0]).toHaveProperty('description', null);
    expect(at55.flavors[0]).not.toHaveProperty('extra_specs');
    const at61 = (
      await h.call('alice', { method: 'GET', url: '/v2.1/flavors/detail', headers: mv('2.61') })
    ).json();
    expect(at61.flavors[0]).toHaveProperty('extra_specs');
    const brief = (await h.call('alice', { method: 'GET', url: '/v2.1/flavors' })).json();
    expect(Object.keys(brief.flavors[0]).sort()).toEqual(['id', 'links', 'name']);
  });

  it('creates (id null generates one), refuses duplicates with 409 and non-admins with 403', async () => {
    const body = {
      name: 'f.one',
      ram: 512,
      vcpus: 1,
      disk: 1,
      id: null,
      swap: 0,
      'OS-FLV-EXT-DATA:ephemeral': 0,
      rxtx_factor: 1.0,
      'os-flavor-access:is_public': true,
    };
    expect((await create('alice', body)).statusCode).toBe(403);
    const r = await create('admin', body);
    expect(r.statusCode).toBe(200);
    expect(r.json().flavor.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await create('admin', body)).statusCode).toBe(409);
    expect(
      (await create('admin', { ...body, name: 'other', id: r.json().flavor.id })).json().conflictingRequest
        .code,
    ).toBe(409);
    const shown = await h.call('rita', { method: 'GET', url: `/v2.1/flavors/${r.json().flavor.id}` });
    expect(shown.json().flavor.name).toBe('f.one');
    const del = await h.call('admin', { method: 'DELETE', url: `/v2.1/flavors/${r.json().flavor.id}` });
    expect(del.statusCode).toBe(202);
    expect(
      (await h.call('admin', { method: 'GET', url: `/v2.1/flavors/${r.json().flavor.id}` })).statusCode,
    ).toBe(404);
  });

  it('keeps hostile names verbatim and refuses NUL, huge values and description below 2.55', async () => {
    const hostile = `<x a="1">'; DROP TABLE x; -- $(rm -rf /) {"a":1}`;
    const ok = await create('admin', { name: hostile, ram: 64, vcpus: 1, disk: 0, id: 'hostile-1' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().flavor.name).toBe(hostile);
    const nul = await create('admin', { name: 'a\u0000b', ram: 64, vcpus: 1, disk: 0 });
    expect(nul.statusCode).toBe(400);
    expect(nul.json().badRequest.message).toContain('body.flavor.name');
    const huge = await create('admin', { name: 'huge', ram: 2 ** 40, vcpus: 1, disk: 0 });
    expect(huge.json().badRequest.message).toContain('body.flavor.ram');
    const desc = await create('admin', { name: 'd', ram: 64, vcpus: 1, disk: 0, description: 'x' });
    expect(desc.statusCode).toBe(400);
    const desc55 = await create(
      'admin',
      { name: 'd55', ram: 64, vcpus: 1, disk: 0, description: 'x' },
      mv('2.55'),
    );
    expect(desc55.json().flavor.description).toBe('x');
  });

  it('pages with limit and marker, following flavors_links; an unknown marker is a 400', async () => {
    const all = (await h.call('admin', { method: 'GET', url: '/v2.1/flavors/detail?is_public=None' })).json()
      .flavors;
    expect(all.length).toBeGreaterThan(2);
    const first = (
      await h.call('admin', { method: 'GET', url: '/v2.1/flavors/detail?is_public=None&limit=1' })
    ).json();
    expect(first.flavors).toHaveLength(1);
    const next = new URL(first.flavors_links[0].href);
    const second = (await h.call('admin', { method: 'GET', url: `${next.pathname}${next.search}` })).json();
    expect(second.flavors[0].id).toBe(all[1].id);
    expect((await h.call('admin', { method: 'GET', url: '/v2.1/flavors?marker=nope' })).statusCode).toBe(400);
    const big = (await h.call('admin', { method: 'GET', url: '/v2.1/flavors/detail?minRam=8000' })).json()
      .flavors;
    expect(big.every((f: { ram: number }) => f.ram >= 8000)).toBe(true);
  });

  it('private flavors: visible to granted projects only, access list round-trips', async () => {
    const r = await create('admin', {
      name: 'private',
      ram: 64,
      vcpus: 1,
      disk: 0,
      id: 'priv-1',
      'os-flavor-access:is_public': false,
    });
    expect(r.json().flavor['os-flavor-access:is_public']).toBe(false);
    expect((await h.call('alice', { method: 'GET', url: '/v2.1/flavors/priv-1' })).statusCode).toBe(404);
    const add = await h.call('admin', {
      method: 'POST',
      url: '/v2.1/flavors/priv-1/action',
      payload: { addTenantAccess: { tenant: 'p1' } },
    });
    expect(add.json()).toEqual({ flavor_access: [{ flavor_id: 'priv-1', tenant_id: 'p1' }] });
    expect(
      (
        await h.call('admin', {
          method: 'POST',
          url: '/v2.1/flavors/priv-1/action',
          payload: { addTenantAccess: { tenant: 'p1' } },
        })
      ).statusCode,
    ).toBe(409);
    expect((await h.call('alice', { method: 'GET', url: '/v2.1/flavors/priv-1' })).statusCode).toBe(200);
    expect((await h.call('bob', { method: 'GET', url: '/v2.1/flavors/priv-1' })).statusCode).toBe(404);
    const priv = (await h.call('admin', { method: 'GET', url: '/v2.1/flavors?is_public=False' })).json()
      .flavors;
    expect(priv.map((f: { id: string }) => f.id)).toEqual(['priv-1']);
    expect(
      (await h.call('alice', { method: 'GET', url: '/v2.1/flavors/priv-1/os-flavor-access' })).statusCode,
    ).toBe(403);
    await h.call('admin', {
      method: 'POST',
      url: '/v2.1/flavors/priv-1/action',
      payload: { removeTenantAccess: { tenant: 'p1' } },
    });
    expect(
      (await h.call('admin', { method: 'GET', url: '/v2.1/flavors/priv-1/os-flavor-access' })).json(),
    ).toEqual({ flavor_access: [] });
  });

  it('extra specs: create/merge, show, update, delete; keys validated; the engine sees them', async () => {
    await create('admin', { name: 'specs', ram: 64, vcpus: 1, disk: 0, id: 'specs-1' });
    const url = '/v2.1/flavors/specs-1/os-extra_specs';
    expect(
      (await h.call('alice', { method: 'POST', url, payload: { extra_specs: { a: '1' } } })).statusCode,
    ).toBe(403);
    expect(
      (
        await h.call('admin', {
          method: 'POST',
          url,
          payload: { extra_specs: { 'hw:cpu_policy': 'dedicated' } },
        })
      ).json(),
    ).toEqual({ extra_specs: { 'hw:cpu_policy': 'dedicated' } });
    await h.call('admin', {
      method: 'POST',
      url,
      payload: { extra_specs: { 'trait:CUSTOM_X': 'required' } },
    });
    expect((await h.call('alice', { method: 'GET', url })).json().extra_specs).toEqual({
      'hw:cpu_policy': 'dedicated',
      'trait:CUSTOM_X': 'required',
    });
    expect(
      (
        await h.call('admin', {
          method: 'PUT',
          url: `${url}/hw:cpu_policy`,
          payload: { 'hw:cpu_policy': 'shared' },
        })
      ).json(),
    ).toEqual({ 'hw:cpu_policy': 'shared' });
    expect(
      (await h.call('admin', { method: 'PUT', url: `${url}/hw:cpu_policy`, payload: { other: 'x' } }))
        .statusCode,
    ).toBe(400);
    expect((await h.call('alice', { method: 'GET', url: `${url}/hw:cpu_policy` })).json()).toEqual({
      'hw:cpu_policy': 'shared',
    });
    expect((await h.services.engine.flavors.get('specs-1'))?.extraSpecs).toEqual({
      'hw:cpu_policy': 'shared',
      'trait:CUSTOM_X': 'required',
    });
    expect((await h.call('admin', { method: 'DELETE', url: `${url}/trait:CUSTOM_X` })).statusCode).toBe(200);
    expect((await h.call('admin', { method: 'GET', url: `${url}/trait:CUSTOM_X` })).statusCode).toBe(404);
    const bad = await h.call('admin', { method: 'POST', url, payload: { extra_specs: { 'bad<key>': 'x' } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().badRequest.message).toContain('body.extra_specs');
  });
});
