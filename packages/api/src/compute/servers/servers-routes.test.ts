import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerImageRecord } from '../../image/index.js';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { createServer, mv, serversHarness, waitForStatus } from './servers.test-helper.js';

describe('servers: create, show, list', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await serversHarness();
  });
  afterAll(() => h.close());

  it('creates a server (202, Location, links) that becomes ACTIVE with the 2.1 fields the CLIs read', async () => {
    const r = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/servers',
      headers: mv('2.37'),
      payload: {
        server: {
          name: 'web',
          imageRef: 'cirros',
          flavorRef: 'm1.small',
          networks: 'none',
          metadata: { a: 'b' },
        },
      },
    });
    expect(r.statusCode).toBe(202);
    const id = r.json().server.id as string;
    expect(r.headers.location).toBe(`http://127.0.0.1:8774/v2.1/servers/${id}`);
    expect(r.json().server.links[0]).toEqual({
      rel: 'self',
      href: `http://127.0.0.1:8774/v2.1/servers/${id}`,
    });
    const server = await waitForStatus(h, id, 'ACTIVE');
    expect(server).toMatchObject({
      id,
      name: 'web',
      metadata: { a: 'b' },
      'OS-EXT-STS:vm_state': 'active',
      'OS-EXT-STS:power_state': 1,
      'OS-EXT-STS:task_state': null,
      image: { id: 'cirros' },
      flavor: { id: 'm1.small' },
    });
    const own = await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` });
    expect(own.statusCode).toBe(200);
    const s = own.json().server;
    expect(s.tenant_id).toBe('p1');
    expect(s.hostId).toMatch(/^[0-9a-f]{56}$/);
    // non-admins never see hosts or hypervisors
    expect(Object.keys(s).filter((k) => k.startsWith('OS-EXT-SRV-ATTR'))).toEqual([]);
    expect(JSON.stringify(s)).not.toContain('host-0');
    expect(JSON.stringify(s)).not.toContain('host-1');
    expect(own.headers['x-compute-request-id']).toMatch(/^req-/);
  });

  it('shows the fields of each microversion: 2.47 embedded flavor, 2.16 host_status, 2.73 locked_reason', async () => {
    const id = await createServer(h, 'alice', { name: 'mv' });
    await waitForStatus(h, id, 'ACTIVE');
    const at21 = (await h.call('admin', { method: 'GET', url: `/v2.1/servers/${id}` })).json().server;
    expect(at21.flavor).toEqual({
      id: 'm1.small',
      links: [{ rel: 'bookmark', href: 'http://127.0.0.1:8774/flavors/m1.small' }],
    });
    expect(at21['OS-EXT-SRV-ATTR:host']).toMatch(/^host-/);
    expect(at21.locked).toBeUndefined();
    expect(at21['OS-EXT-SRV-ATTR:reservation_id']).toBeUndefined();
    const at273 = (
      await h.call('admin', { method: 'GET', url: `/v2.1/servers/${id}`, headers: mv('2.73') })
    ).json().server;
    expect(at273.flavor).toMatchObject({
      original_name: 'm1.small',
      vcpus: 1,
      ram: 2048,
      disk: 10,
      extra_specs: {},
    });
    expect(at273.flavor.id).toBeUndefined();
    expect(at273).toMatchObject({
      host_status: 'UP',
      locked: false,
      locked_reason: null,
      description: null,
      tags: [],
      server_groups: [],
    });
    expect(at273['OS-EXT-SRV-ATTR:reservation_id']).toMatch(/^r-/);
    const member = (
      await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}`, headers: mv('2.73') })
    ).json().server;
    expect(member.host_status).toBeUndefined();
  });

  it('lists with paging: limit, marker, servers_links; an unknown marker is a 400', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await createServer(h, 'bob', { name: `page-${i}` }));
    const first = await h.call('bob', { method: 'GET', url: '/v2.1/servers/detail?limit=2' });
    expect(first.statusCode).toBe(200);
    expect(first.json().servers).toHaveLength(2);
    const next = first.json().servers_links[0].href as string;
    expect(next).toContain('/v2.1/servers/detail?');
    const url = new URL(next);
    const second = await h.call('bob', { method: 'GET', url: `${url.pathname}${url.search}` });
    expect(second.json().servers.map((s: { id: string }) => s.id)).toEqual([ids[2]]);
    expect(second.json().servers_links).toBeUndefined();
    const bad = await h.call('bob', {
      method: 'GET',
      url: '/v2.1/servers?marker=00000000-0000-0000-0000-000000000000',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().badRequest.message).toContain('marker');
  });

  it('filters by name (text and regular expression), status and, for admins, host and all_tenants', async () => {
    const names = (r: { json(): { servers: { name: string }[] } }) =>
      r
        .json()
        .servers.map((s) => s.name)
        .sort();
    expect(names(await h.call('bob', { method: 'GET', url: '/v2.1/servers?name=page-1' }))).toEqual([
      'page-1',
    ]);
    expect(
      names(await h.call('bob', { method: 'GET', url: '/v2.1/servers?name=%5Epage-%5B02%5D%24' })),
    ).toEqual(['page-0', 'page-2']);
    const bad = await h.call('bob', { method: 'GET', url: '/v2.1/servers?status=BOGUS' });
    expect(bad.statusCode).toBe(400);
    // a member cannot list other projects
    const denied = await h.call('bob', { method: 'GET', url: '/v2.1/servers/detail?all_tenants=True' });
    expect(denied.statusCode).toBe(403);
    const all = await h.call('admin', { method: 'GET', url: '/v2.1/servers/detail?all_tenants=1' });
    const projects = new Set(all.json().servers.map((s: { tenant_id: string }) => s.tenant_id));
    expect(projects).toEqual(new Set(['p1', 'p2']));
    const onlyP2 = await h.call('admin', {
      method: 'GET',
      url: '/v2.1/servers/detail?all_tenants=True&tenant_id=p2',
    });
    expect(new Set(onlyP2.json().servers.map((s: { tenant_id: string }) => s.tenant_id))).toEqual(
      new Set(['p2']),
    );
    const host = all.json().servers[0]['OS-EXT-SRV-ATTR:host'] as string;
    const onHost = await h.call('admin', {
      method: 'GET',
      url: `/v2.1/servers/detail?all_tenants=1&host=${host}`,
    });
    expect(
      onHost.json().servers.every((s: Record<string, string>) => s['OS-EXT-SRV-ATTR:host'] === host),
    ).toBe(true);
    // for a member, host is not a filter (dropped, as Nova drops it): the member sees its own list
    const memberHost = await h.call('bob', { method: 'GET', url: '/v2.1/servers?host=nowhere' });
    expect(memberHost.json().servers.length).toBe(3);
  });
});

describe('servers: isolation, validation, mass assignment', () => {
  let h: ApiHarness;
  let aliceServer: string;
  beforeAll(async () => {
    h = await serversHarness();
    aliceServer = await createServer(h, 'alice', { name: 'private' });
    await waitForStatus(h, aliceServer, 'ACTIVE');
  });
  afterAll(() => h.close());

  it("answers 404 for another project's server, for every verb", async () => {
    const calls = [
      { method: 'GET' as const, url: `/v2.1/servers/${aliceServer}` },
      { method: 'PUT' as const, url: `/v2.1/servers/${aliceServer}`, payload: { server: { name: 'x' } } },
      { method: 'DELETE' as const, url: `/v2.1/servers/${aliceServer}` },
      { method: 'POST' as const, url: `/v2.1/servers/${aliceServer}/action`, payload: { 'os-stop': null } },
      { method: 'GET' as const, url: `/v2.1/servers/${aliceServer}/metadata` },
      { method: 'GET' as const, url: `/v2.1/servers/${aliceServer}/os-instance-actions` },
    ];
    for (const c of calls) {
      const r = await h.call('bob', c);
      expect(r.statusCode, `${c.method} ${c.url}`).toBe(404);
      expect(r.json().itemNotFound.message).toBe(`Instance ${aliceServer} could not be found.`);
    }
    const still = await h.call('alice', { method: 'GET', url: `/v2.1/servers/${aliceServer}` });
    expect(still.json().server.name).toBe('private');
  });

  it('lets a reader look but not create, change or delete (403)', async () => {
    expect((await h.call('rita', { method: 'GET', url: `/v2.1/servers/${aliceServer}` })).statusCode).toBe(
      200,
    );
    const create = await h.call('rita', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'x', imageRef: 'cirros', flavorRef: 'm1.small' } },
    });
    expect(create.statusCode).toBe(403);
    expect(create.json().forbidden.message).toContain('os_compute_api:servers:create');
    const stop = await h.call('rita', {
      method: 'POST',
      url: `/v2.1/servers/${aliceServer}/action`,
      payload: { 'os-stop': null },
    });
    expect(stop.statusCode).toBe(403);
    const del = await h.call('rita', { method: 'DELETE', url: `/v2.1/servers/${aliceServer}` });
    expect(del.statusCode).toBe(403);
  });

  it('refuses fields a caller may not set (host, project) and names the field', async () => {
    for (const [field, value] of [
      ['host', 'host-0'],
      ['project_id', 'p2'],
      ['tenant_id', 'p2'],
      ['node', 'host-0'],
    ] as const) {
      const r = await h.call('alice', {
        method: 'POST',
        url: '/v2.1/servers',
        payload: { server: { name: 'x', imageRef: 'cirros', flavorRef: 'm1.small', [field]: value } },
      });
      expect(r.statusCode, field).toBe(400);
      expect(r.json().badRequest.message).toContain(field);
    }
    const list = await h.call('alice', { method: 'GET', url: '/v2.1/servers' });
    expect(list.json().servers).toHaveLength(1);
  });

  it('refuses hostile or malformed input with a 400 naming the field, creating nothing', async () => {
    const bodies: [unknown, string][] = [
      [{ server: { name: 'a\u0000b', imageRef: 'cirros', flavorRef: 'm1.small' } }, 'body.server.name'],
      [{ server: { name: 'x'.repeat(256), imageRef: 'cirros', flavorRef: 'm1.small' } }, 'body.server.name'],
      [
        { server: { name: 'ok', imageRef: 'cirros', flavorRef: 'm1.small', metadata: { k: 'v\n' } } },
        'body.server.metadata',
      ],
      [
        { server: { name: 'ok', imageRef: 'cirros', flavorRef: 'm1.small', min_count: 0 } },
        'body.server.min_count',
      ],
      [{ server: { name: 'ok', imageRef: 'nope', flavorRef: 'm1.small' } }, 'imageRef'],
      [{ server: { name: 'ok', imageRef: 'cirros', flavorRef: 'nope' } }, 'flavorRef'],
      [{ server: { name: 'ok', imageRef: 'cirros', flavorRef: 'm1.small', key_name: 'nokey' } }, 'key_name'],
      [
        {
          server: { name: 'ok', imageRef: 'cirros', flavorRef: 'm1.small' },
          'os:scheduler_hints': { group: 'nope' },
        },
        'group',
      ],
      [
        {
          server: {
            name: "<x/>'; DROP TABLE instances;--",
            imageRef: 'cirros',
            flavorRef: 'm1.small',
            min_count: 2,
            max_count: 1,
          },
        },
        'max_count',
      ],
    ];
    for (const [payload, field] of bodies) {
      const r = await h.call('alice', { method: 'POST', url: '/v2.1/servers', payload: payload as object });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
      expect(r.body).toContain(field);
    }
    const malformed = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/servers',
      headers: { 'content-type': 'application/json' },
      payload: '{"server": {',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().badRequest.message).toContain('JSON');
    const list = await h.call('alice', { method: 'GET', url: '/v2.1/servers' });
    expect(list.json().servers).toHaveLength(1);
  });

  it("refuses to boot another project's private image as if it did not exist", async () => {
    const image = await h.services.engine.images.import(
      { id: 'alice-private', name: 'alice-private', diskFormat: 'raw' },
      { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) },
    );
    await registerImageRecord(h.services, { imageId: image.id, ownerProjectId: 'p1', visibility: 'private' });
    const bob = await h.call('bob', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'thief', imageRef: 'alice-private', flavorRef: 'm1.small' } },
    });
    expect(bob.statusCode).toBe(400);
    expect(bob.json().badRequest.message).toBe(
      'Invalid imageRef provided: image alice-private could not be found.',
    );
    const id = await createServer(h, 'alice', { name: 'owner', imageRef: 'alice-private' });
    await waitForStatus(h, id, 'ACTIVE');
    expect((await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${id}` })).statusCode).toBe(204);
    await waitForStatus(h, id, 'DELETED');
  });

  it('refuses a create over quota with 403 in Nova words, and stores a hostile name verbatim when valid', async () => {
    await h.services.engine.quotas.set('p2', { instances: 1 });
    const name = `x"><script>$(rm -rf /)</script>'; DROP TABLE--`;
    const ok = await createServer(h, 'bob', { name });
    const shown = await h.call('bob', { method: 'GET', url: `/v2.1/servers/${ok}` });
    expect(shown.json().server.name).toBe(name);
    const over = await h.call('bob', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'y', imageRef: 'cirros', flavorRef: 'm1.small' } },
    });
    expect(over.statusCode).toBe(403);
    expect(over.json().forbidden.message).toMatch(
      /^Quota exceeded for instances: Requested 1, but already used 1 of 1 instances/,
    );
  });
});

describe('servers: many at once, idempotency, update, delete', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await serversHarness();
  });
  afterAll(() => h.close());

  it('creates min_count..max_count servers named name-N in one reservation', async () => {
    const r = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: {
        server: {
          name: 'multi',
          imageRef: 'cirros',
          flavorRef: 'm1.small',
          min_count: 3,
          max_count: 3,
          return_reservation_id: true,
        },
      },
    });
    expect(r.statusCode).toBe(202);
    expect(r.json().reservation_id).toMatch(/^r-/);
    const list = await h.call('alice', { method: 'GET', url: '/v2.1/servers?name=multi' });
    expect(
      list
        .json()
        .servers.map((s: { name: string }) => s.name)
        .sort(),
    ).toEqual(['multi-1', 'multi-2', 'multi-3']);
  });

  it('places servers of an anti-affinity group on different hosts', async () => {
    const group = await h.services.engine.serverGroups.create({
      id: randomUUID(),
      name: 'g',
      projectId: 'p1',
      policy: 'anti-affinity',
    });
    const r = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: {
        server: { name: 'spread', imageRef: 'cirros', flavorRef: 'm1.small', min_count: 2, max_count: 2 },
        'os:scheduler_hints': { group: group.id },
      },
    });
    expect(r.statusCode).toBe(202);
    const listed = await h.call('admin', {
      method: 'GET',
      url: '/v2.1/servers/detail?all_tenants=1&name=spread',
    });
    const ids = listed.json().servers.map((s: { id: string }) => s.id) as string[];
    expect(ids).toHaveLength(2);
    const hosts = [];
    for (const id of ids) hosts.push((await waitForStatus(h, id, 'ACTIVE'))['OS-EXT-SRV-ATTR:host']);
    expect(new Set(hosts).size).toBe(2);
  });

  it('returns the same server for a retried request with the same Idempotency-Key', async () => {
    const call = () =>
      h.call('alice', {
        method: 'POST',
        url: '/v2.1/servers',
        headers: { 'idempotency-key': 'create-once-42' },
        payload: { server: { name: 'once', imageRef: 'cirros', flavorRef: 'm1.small' } },
      });
    const a = await call();
    const b = await call();
    expect(a.statusCode).toBe(202);
    expect(b.json().server.id).toBe(a.json().server.id);
    const list = await h.call('alice', { method: 'GET', url: '/v2.1/servers?name=once' });
    expect(list.json().servers).toHaveLength(1);
  });

  it('renames and describes a server (description from 2.19 only), then deletes it to a 404', async () => {
    const id = await createServer(h, 'alice', { name: 'before' });
    await waitForStatus(h, id, 'ACTIVE');
    const early = await h.call('alice', {
      method: 'PUT',
      url: `/v2.1/servers/${id}`,
      payload: { server: { description: 'd' } },
    });
    expect(early.statusCode).toBe(400);
    const r = await h.call('alice', {
      method: 'PUT',
      url: `/v2.1/servers/${id}`,
      headers: mv('2.19'),
      payload: { server: { name: 'after', description: 'the web tier' } },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().server).toMatchObject({ name: 'after', description: 'the web tier' });
    const del = await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${id}` });
    expect(del.statusCode).toBe(204);
    await waitForStatus(h, id, 'DELETED');
    const gone = await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` });
    expect(gone.statusCode).toBe(404);
  });

  it('shows a failed build as ERROR with a fault: the explanation for admins, a plain message for others', async () => {
    const r = await h.call('alice', {
      method: 'POST',
      url: '/v2.1/servers',
      payload: {
        server: { name: 'huge', imageRef: 'cirros', flavorRef: 'm1.large', min_count: 40, max_count: 40 },
      },
    });
    expect(r.statusCode).toBe(202);
    const id = r.json().server.id as string;
    const admin = await waitForStatus(h, id, 'ERROR');
    expect(admin.fault).toMatchObject({ code: 500 });
    expect((admin.fault as { message: string }).message).toMatch(/^No valid host was found\. .*host/);
    expect((admin.fault as { details: string }).details).toContain('rejections');
    const member = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` })).json().server;
    expect(member.fault).toEqual({
      code: 500,
      created: expect.any(String),
      message: 'No valid host was found. There are not enough hosts available.',
    });
  });
});
