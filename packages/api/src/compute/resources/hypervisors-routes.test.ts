import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { HostIds } from './host-ids.js';
import { resourceDb } from './resource-common.js';
import { mv, resourcesHarness } from './resources.test-helper.js';

describe('os-hypervisors', () => {
  let h: ApiHarness;
  let vmId: string;
  beforeAll(async () => {
    h = await resourcesHarness({ cloud: { hosts: 3 } });
    const [vm] = await h.services.engine.create(h.cloud.request({ name: 'on-host', flavorId: 'm1.large' }));
    vmId = vm!.id;
  });
  afterAll(() => h.close());

  const get = (url: string, headers = {}, token = 'admin') => h.call(token, { method: 'GET', url, headers });

  it('lists at 2.1 with integer ids, state and status; detail has a JSON-string cpu_info and usage', async () => {
    const list = (await get('/v2.1/os-hypervisors')).json().hypervisors;
    expect(list).toHaveLength(3);
    expect(list[0]).toEqual({ id: 1, hypervisor_hostname: 'host-0', state: 'up', status: 'enabled' });
    const detail = (await get('/v2.1/os-hypervisors/detail')).json().hypervisors;
    const busy = detail.find((x: { running_vms: number }) => x.running_vms === 1);
    expect(busy).toMatchObject({
      hypervisor_type: 'fake',
      host_ip: '127.0.0.1',
      vcpus: 16,
      vcpus_used: 8,
      memory_mb_used: 16_384,
      current_workload: 0,
    });
    expect(busy.free_ram_mb).toBe(busy.memory_mb - 16_384);
    expect(busy.local_gb_used).toBe(80);
    expect(typeof busy.cpu_info).toBe('string');
    expect(JSON.parse(busy.cpu_info)).toHaveProperty('arch');
    expect(busy.service).toEqual({
      id: expect.any(Number),
      host: busy.hypervisor_hostname,
      disabled_reason: null,
    });
    expect(detail[0]).not.toHaveProperty('servers');
  });

  it('shows cpu_info as an object from 2.28 and uuids from 2.53, with servers on request', async () => {
    const at28 = (await get('/v2.1/os-hypervisors/1', mv('2.28'))).json().hypervisor;
    expect(at28.cpu_info).toMatchObject({ arch: 'x86_64', topology: { cores: 16 } });
    const at53 = (await get('/v2.1/os-hypervisors/detail?with_servers=true', mv('2.53'))).json().hypervisors;
    expect(at53[0].id).toMatch(/^[0-9a-f-]{36}$/);
    expect(at53[0].service.id).toMatch(/^[0-9a-f-]{36}$/);
    const withVm = at53.find((x: { servers?: unknown[] }) => x.servers);
    expect(withVm.servers).toEqual([{ name: 'on-host', uuid: vmId }]);
    const one = await get(`/v2.1/os-hypervisors/${at53[1].id}`, mv('2.53'));
    expect(one.json().hypervisor.hypervisor_hostname).toBe(at53[1].hypervisor_hostname);
    expect((await get('/v2.1/os-hypervisors/1', mv('2.53'))).statusCode).toBe(400);
    expect((await get('/v2.1/os-hypervisors/99')).json().itemNotFound.code).toBe(404);
    const filtered = await get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=host-2', mv('2.53'));
    expect(
      filtered.json().hypervisors.map((x: { hypervisor_hostname: string }) => x.hypervisor_hostname),
    ).toEqual(['host-2']);
    expect((await get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=zzz', mv('2.53'))).statusCode).toBe(
      404,
    );
  });

  it('keeps integer ids stable: a second id table reader sees the same numbers', async () => {
    const before = (await get('/v2.1/os-hypervisors')).json().hypervisors;
    const ids = await new HostIds(resourceDb(h.services)).ensure(['hypervisor:host-0', 'hypervisor:host-2']);
    expect(ids.get('hypervisor:host-0')?.num).toBe(before[0].id);
    expect(ids.get('hypervisor:host-2')?.num).toBe(before[2].id);
    expect((await get('/v2.1/os-hypervisors')).json().hypervisors).toEqual(before);
  });

  it('pages from 2.33 with hypervisors_links; an unknown marker is a 400', async () => {
    const first = (await get('/v2.1/os-hypervisors?limit=2', mv('2.33'))).json();
    expect(first.hypervisors.map((x: { id: number }) => x.id)).toEqual([1, 2]);
    const next = new URL(first.hypervisors_links[0].href);
    const rest = (await get(`${next.pathname}${next.search}`, mv('2.33'))).json();
    expect(rest.hypervisors.map((x: { id: number }) => x.id)).toEqual([3]);
    expect(rest).not.toHaveProperty('hypervisors_links');
    expect((await get('/v2.1/os-hypervisors?limit=2')).json().hypervisors).toHaveLength(3);
    expect((await get('/v2.1/os-hypervisors?marker=77', mv('2.33'))).statusCode).toBe(400);
    expect((await get('/v2.1/os-hypervisors?limit=x', mv('2.33'))).json().badRequest.message).toContain(
      'query.limit',
    );
  });

  it('uptime is a 501 for an existing hypervisor and a 404 for an unknown one', async () => {
    const up = await get('/v2.1/os-hypervisors/2/uptime');
    expect(up.statusCode).toBe(501);
    expect(up.json().notImplemented.code).toBe(501);
    expect((await get('/v2.1/os-hypervisors/42/uptime')).statusCode).toBe(404);
  });

  it('statistics, search and servers (below 2.53)', async () => {
    const stats = (await get('/v2.1/os-hypervisors/statistics')).json().hypervisor_statistics;
    expect(stats).toMatchObject({ count: 3, vcpus: 48, vcpus_used: 8, running_vms: 1 });
    const found = (await get('/v2.1/os-hypervisors/host-1/search')).json().hypervisors;
    expect(found).toEqual([{ id: 2, hypervisor_hostname: 'host-1', state: 'up', status: 'enabled' }]);
    expect((await get('/v2.1/os-hypervisors/nomatch/search')).statusCode).toBe(404);
    const servers = (await get('/v2.1/os-hypervisors/host/servers')).json().hypervisors;
    expect(
      servers
        .flatMap((x: { servers?: { uuid: string }[] }) => x.servers ?? [])
        .map((s: { uuid: string }) => s.uuid),
    ).toEqual([vmId]);
    expect((await get('/v2.1/os-hypervisors/host-1/search', mv('2.53'))).statusCode).toBe(404);
  });

  it('shows a disabled host as disabled with its reason, and is admin only', async () => {
    await h.services.engine.hosts.setStatus('host-2', { enabled: false, disabledReason: 'maintenance' });
    const shown = (await get('/v2.1/os-hypervisors/3')).json().hypervisor;
    expect(shown.status).toBe('disabled');
    expect(shown.service.disabled_reason).toBe('maintenance');
    for (const url of [
      '/v2.1/os-hypervisors',
      '/v2.1/os-hypervisors/detail',
      '/v2.1/os-hypervisors/1',
      '/v2.1/os-hypervisors/1/uptime',
      '/v2.1/os-hypervisors/statistics',
      '/v2.1/os-hypervisors/host/search',
    ]) {
      const r = await get(url, {}, 'alice');
      expect(r.statusCode, url).toBe(403);
      expect(r.json().forbidden.code).toBe(403);
    }
  });
});
