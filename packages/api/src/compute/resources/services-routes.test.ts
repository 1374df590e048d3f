import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('os-services and os-availability-zone', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await resourcesHarness({ cloud: { hosts: 3 } });
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

  it('lists the control plane and one nova-compute per host, in Nova’s shape per microversion', async () => {
    const old = (await call('GET', '/v2.1/os-services')).json().services;
    expect(old.map((s: { binary: string }) => s.binary)).toEqual([
      'nova-conductor',
      'nova-scheduler',
      'nova-compute',
      'nova-compute',
      'nova-compute',
    ]);
    expect(old[0]).toMatchObject({ host: 'nova-lfs', zone: 'internal', status: 'enabled', state: 'up' });
    expect(old[2]).toMatchObject({
      id: expect.any(Number),
      host: 'host-0',
      zone: 'nova',
      disabled_reason: null,
    });
    expect(old[2].updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(old[2]).not.toHaveProperty('forced_down');
    const at69 = (
      await call('GET', '/v2.1/os-services?binary=None&host=None', undefined, 'admin', mv('2.69'))
    ).json().services;
    expect(at69).toHaveLength(5);
    expect(at69[2].id).toMatch(/^[0-9a-f-]{36}$/);
    expect(at69[2].forced_down).toBe(false);
    const one = (await call('GET', '/v2.1/os-services?host=host-1&binary=nova-compute')).json().services;
    expect(one.map((s: { host: string }) => s.host)).toEqual(['host-1']);
    expect((await call('GET', '/v2.1/os-services', undefined, 'alice')).statusCode).toBe(403);
  });

  it('disables with a reason through the engine (2.53 by uuid, older by host and binary) and forces down', async () => {
    const at53 = (await call('GET', '/v2.1/os-services?host=host-1', undefined, 'admin', mv('2.53'))).json()
      .services[0];
    const r = await call(
      'PUT',
      `/v2.1/os-services/${at53.id}`,
      { status: 'disabled', disabled_reason: 'disk <swap>' },
      'admin',
      mv('2.53'),
    );
    expect(r.statusCode).toBe(200);
    expect(r.json().service).toMatchObject({
      status: 'disabled',
      disabled_reason: 'disk <swap>',
      host: 'host-1',
    });
    expect(await h.services.engine.hosts.get('host-1')).toMatchObject({
      enabled: false,
      disabledReason: 'disk <swap>',
    });
    const [vm] = await h.services.engine.create(h.cloud.request());
    expect(vm?.hostId).not.toBe('host-1');
    const bad = await call(
      'PUT',
      `/v2.1/os-services/${at53.id}`,
      { status: 'enabled', disabled_reason: 'x' },
      'admin',
      mv('2.53'),
    );
    expect(bad.json().badRequest.message).toContain('disabled_reason');
    const unknownKey = await call(
      'PUT',
      `/v2.1/os-services/${at53.id}`,
      { status: 'enabled', up: 1 },
      'admin',
      mv('2.53'),
    );
    expect(unknownKey.statusCode).toBe(400);
    expect(
      (await call('PUT', '/v2.1/os-services/1', { status: 'enabled' }, 'admin', mv('2.53'))).statusCode,
    ).toBe(400);
    expect(
      (await call('PUT', `/v2.1/os-services/${at53.id}`, { status: 'enabled' }, 'alice', mv('2.53')))
        .statusCode,
    ).toBe(403);

    const enable = await call('PUT', '/v2.1/os-services/enable', { host: 'host-1', binary: 'nova-compute' });
    expect(enable.json()).toEqual({ service: { host: 'host-1', binary: 'nova-compute', status: 'enabled' } });
    const reason = await call('PUT', '/v2.1/os-services/disable-log-reason', {
      host: 'host-1',
      binary: 'nova-compute',
      disabled_reason: 'again',
    });
    expect(reason.json().service).toMatchObject({ status: 'disabled', disabled_reason: 'again' });
    const nul = await call('PUT', '/v2.1/os-services/disable-log-reason', {
      host: 'host-1',
      binary: 'nova-compute',
      disabled_reason: 'a\u0000',
    });
    expect(nul.json().badRequest.message).toContain('body.disabled_reason');
    await call('PUT', '/v2.1/os-services/enable', { host: 'host-1', binary: 'nova-compute' });
    const down = await call(
      'PUT',
      '/v2.1/os-services/force-down',
      { host: 'host-2', binary: 'nova-compute', forced_down: true },
      'admin',
      mv('2.11'),
    );
    expect(down.json().service.forced_down).toBe(true);
    const listed = (await call('GET', '/v2.1/os-services?host=host-2', undefined, 'admin', mv('2.11'))).json()
      .services[0];
    expect(listed).toMatchObject({ state: 'down', forced_down: true });
    await call(
      'PUT',
      '/v2.1/os-services/force-down',
      { host: 'host-2', binary: 'nova-compute', forced_down: false },
      'admin',
      mv('2.11'),
    );
    expect(
      (await call('PUT', '/v2.1/os-services/enable', { host: 'nova-lfs', binary: 'nova-scheduler' }))
        .statusCode,
    ).toBe(400);
    expect(
      (await call('PUT', '/v2.1/os-services/enable', { host: 'nope', binary: 'nova-compute' })).statusCode,
    ).toBe(404);
    await h.services.engine.delete(vm!.id);
  });

  it('lists zones for readers and details them (internal zone, per-host services) for admins', async () => {
    await h.services.engine.hosts.setPlacement('host-2', { aggregates: [], availabilityZone: 'az2' });
    const zones = (await call('GET', '/v2.1/os-availability-zone', undefined, 'rita')).json()
      .availabilityZoneInfo;
    expect(zones).toEqual([
      { zoneName: 'nova', zoneState: { available: true }, hosts: null },
      { zoneName: 'az2', zoneState: { available: true }, hosts: null },
    ]);
    expect((await call('GET', '/v2.1/os-availability-zone/detail', undefined, 'rita')).statusCode).toBe(403);
    const detail = (await call('GET', '/v2.1/os-availability-zone/detail')).json().availabilityZoneInfo;
    expect(detail[0].zoneName).toBe('internal');
    expect(Object.keys(detail[0].hosts['nova-lfs']).sort()).toEqual(['nova-conductor', 'nova-scheduler']);
    expect(detail[1].hosts['host-0']['nova-compute']).toMatchObject({ available: true, active: true });
    await h.services.engine.hosts.setStatus('host-2', { enabled: false });
    const after = (await call('GET', '/v2.1/os-availability-zone', undefined, 'rita')).json()
      .availabilityZoneInfo;
    expect(after[1]).toEqual({ zoneName: 'az2', zoneState: { available: false }, hosts: null });
  });

  it('deletes the compute service of an empty host (the host leaves), 409 while it has instances', async () => {
    const list = (await call('GET', '/v2.1/os-services?binary=nova-compute')).json().services;
    const [vm] = await h.services.engine.create(h.cloud.request());
    const busy = list.find((s: { host: string }) => s.host === vm!.hostId);
    expect((await call('DELETE', `/v2.1/os-services/${busy.id}`)).statusCode).toBe(409);
    const idle = list.find((s: { host: string }) => s.host === 'host-2');
    expect((await call('DELETE', `/v2.1/os-services/${idle.id}`, undefined, 'alice')).statusCode).toBe(403);
    expect((await call('DELETE', `/v2.1/os-services/${idle.id}`)).statusCode).toBe(204);
    expect(await h.services.engine.hosts.get('host-2')).toBeUndefined();
    expect((await call('DELETE', `/v2.1/os-services/${idle.id}`)).statusCode).toBe(404);
    const control = (await call('GET', '/v2.1/os-services?binary=nova-scheduler')).json().services[0];
    expect((await call('DELETE', `/v2.1/os-services/${control.id}`)).statusCode).toBe(400);
  });
});
