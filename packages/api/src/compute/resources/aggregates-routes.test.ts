import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { syncAggregates } from './aggregate-placement.js';
import { AggregateStore } from './aggregate-store.js';
import { resourceDb } from './resource-common.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('os-aggregates', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness({ cloud: { hosts: 3 } });
  });
  afterAll(() => h.close());

  const call = (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: unknown,
    token = 'admin',
    headers = {},
  ) =>
    h.call(token, { method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const action = (id: number, body: unknown) => call('POST', `/v2.1/os-aggregates/${id}/action`, body);

  it('creates with integer ids, shows Nova’s fields (uuid from 2.41), refuses duplicates and non-admins', async () => {
    expect(
      (await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'a1' } }, 'alice')).statusCode,
    ).toBe(403);
    const r = await call('POST', '/v2.1/os-aggregates', {
      aggregate: { name: 'a1', availability_zone: null },
    });
    expect(r.statusCode).toBe(200);
    const a = r.json().aggregate;
    expect(a).toMatchObject({
      id: 1,
      name: 'a1',
      availability_zone: null,
      hosts: [],
      metadata: {},
      deleted: false,
    });
    expect(a.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(a).not.toHaveProperty('uuid');
    expect((await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'a1' } })).statusCode).toBe(409);
    const shown = (await call('GET', '/v2.1/os-aggregates/1', undefined, 'admin', mv('2.41'))).json()
      .aggregate;
    expect(shown.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await call('GET', '/v2.1/os-aggregates', undefined, 'alice')).statusCode).toBe(403);
    expect((await call('GET', '/v2.1/os-aggregates/99')).statusCode).toBe(404);
    expect((await call('GET', '/v2.1/os-aggregates/x')).statusCode).toBe(400);
  });

  it('refuses hostile input with a 400 naming the field', async () => {
    const nul = await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'a\u0000' } });
    expect(nul.json().badRequest.message).toContain('body.aggregate.name');
    const colon = await call('POST', '/v2.1/os-aggregates', {
      aggregate: { name: 'z', availability_zone: 'a:b' },
    });
    expect(colon.json().badRequest.message).toContain('body.aggregate.availability_zone');
    const internal = await call('POST', '/v2.1/os-aggregates', {
      aggregate: { name: 'z', availability_zone: 'internal' },
    });
    expect(internal.statusCode).toBe(400);
    const extra = await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'z', hosts: ['x'] } });
    expect(extra.statusCode).toBe(400);
    const key = await action(1, { set_metadata: { metadata: { 'bad<key>': 'x' } } });
    expect(key.json().badRequest.message).toContain('body');
    const hostile = `<a>'; DROP TABLE compute_aggregate; --`;
    const kept = await call('POST', '/v2.1/os-aggregates', { aggregate: { name: hostile } });
    expect(kept.json().aggregate.name).toBe(hostile);
    expect((await call('DELETE', `/v2.1/os-aggregates/${kept.json().aggregate.id}`)).statusCode).toBe(200);
  });

  it('an aggregate’s availability zone steers scheduling: hosts move to it and back', async () => {
    const r = await call('POST', '/v2.1/os-aggregates', {
      aggregate: { name: 'fast', availability_zone: 'az-fast' },
    });
    const id = r.json().aggregate.id;
    expect(r.json().aggregate.metadata).toEqual({ availability_zone: 'az-fast' });
    const added = await action(id, { add_host: { host: 'host-2' } });
    expect(added.json().aggregate.hosts).toEqual(['host-2']);
    expect((await action(id, { add_host: { host: 'host-2' } })).statusCode).toBe(409);
    expect((await action(id, { add_host: { host: 'nope' } })).statusCode).toBe(404);
    const host = await h.services.engine.hosts.get('host-2');
    expect(host?.availabilityZone).toBe('az-fast');
    expect(host?.aggregates).toEqual([
      { id: String(id), name: 'fast', metadata: { availability_zone: 'az-fast' } },
    ]);

    const [vm] = await h.services.engine.create(h.cloud.request({ availabilityZone: 'az-fast' }));
    expect(vm?.hostId).toBe('host-2');
    const [other] = await h.services.engine.create(h.cloud.request({ availabilityZone: 'nova' }));
    expect(other?.hostId).not.toBe('host-2');
    // A host with instances cannot change zone; an empty aggregate cannot be deleted.
    const moved = await action(id, { set_metadata: { metadata: { availability_zone: 'elsewhere' } } });
    expect(moved.json().badRequest.message).toContain('has instances');
    expect((await call('DELETE', `/v2.1/os-aggregates/${id}`)).statusCode).toBe(400);
    await h.services.engine.delete(vm!.id);

    const meta = await action(id, {
      set_metadata: { metadata: { ssd: 'true', availability_zone: 'az-ssd' } },
    });
    expect(meta.json().aggregate).toMatchObject({ availability_zone: 'az-ssd', metadata: { ssd: 'true' } });
    expect((await h.services.engine.hosts.get('host-2'))?.availabilityZone).toBe('az-ssd');
    // A host may be in one zone only.
    const b = (
      await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'b', availability_zone: 'az-b' } })
    ).json().aggregate.id;
    expect((await action(b, { add_host: { host: 'host-2' } })).statusCode).toBe(409);

    const removed = await action(id, { remove_host: { host: 'host-2' } });
    expect(removed.json().aggregate.hosts).toEqual([]);
    expect((await action(id, { remove_host: { host: 'host-2' } })).statusCode).toBe(404);
    const back = await h.services.engine.hosts.get('host-2');
    expect(back?.availabilityZone).toBe('nova');
    expect(back?.aggregates).toEqual([]);
    await expect(
      h.services.engine.create(h.cloud.request({ availabilityZone: 'az-ssd' })),
    ).resolves.toMatchObject([{ vmState: 'error' }]);
  });

  it('renames, refuses a taken name, and applies stored aggregates again after a restart', async () => {
    const r = await call('POST', '/v2.1/os-aggregates', {
      aggregate: { name: 'r1', availability_zone: 'az-r' },
    });
    const id = r.json().aggregate.id;
    await action(id, { add_host: { host: 'host-0' } });
    const renamed = await call('PUT', `/v2.1/os-aggregates/${id}`, { aggregate: { name: 'r2' } });
    expect(renamed.json().aggregate).toMatchObject({ name: 'r2', availability_zone: 'az-r' });
    expect(renamed.json().aggregate.updated_at).not.toBeNull();
    expect((await call('PUT', `/v2.1/os-aggregates/${id}`, { aggregate: { name: 'a1' } })).statusCode).toBe(
      409,
    );
    expect((await call('PUT', `/v2.1/os-aggregates/${id}`, { aggregate: {} })).statusCode).toBe(400);
    // The engine rebuilding the host from its binding forgets the aggregate; a sync restores it.
    await h.services.engine.hosts.setPlacement('host-0', { aggregates: [], availabilityZone: 'nova' });
    await syncAggregates(h.services, new AggregateStore(resourceDb(h.services)));
    const host = await h.services.engine.hosts.get('host-0');
    expect(host?.availabilityZone).toBe('az-r');
    expect(host?.aggregates.map((a) => a.name)).toEqual(['r2']);
  });
});
