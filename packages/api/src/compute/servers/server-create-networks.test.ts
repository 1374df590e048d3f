import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalNetworkAdapter } from '@nova-lfs/network-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { mv, serversHarness, waitForStatus } from './servers.test-helper.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-create-networks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function adapter(
  networks = [
    { id: 'net-a', cidr: '10.40.0.0/24', name: 'private' },
    { id: 'net-b', cidr: '10.41.0.0/29' },
  ],
) {
  return new LocalNetworkAdapter({ stateDir: join(root, `state-${++dirs}`), networks });
}

/**
 * Resolves once the adapter ran every mutation queued so far: the engine's delete queues the
 * release of the ports before it removes the record (a 404), and the adapter runs its mutations
 * in order, so one more (deleting a port that does not exist: no write) comes after it.
 */
const released = (network: LocalNetworkAdapter) => network.deletePort(randomUUID());

async function harness(network: LocalNetworkAdapter | undefined): Promise<ApiHarness> {
  return serversHarness({
    cloud: { hosts: 1, ...(network ? { core: { network } } : {}) },
    ...(network ? { network } : {}),
  });
}

function post(h: ApiHarness, server: Record<string, unknown>, version = '2.1', token = 'alice') {
  return h.call(token, {
    method: 'POST',
    url: '/v2.1/servers',
    headers: mv(version),
    payload: { server: { name: 'vm', imageRef: 'cirros', flavorRef: 'm1.small', ...server } },
  });
}

describe('POST /servers with networks (real LocalNetworkAdapter, FAKE driver)', () => {
  let h: ApiHarness;
  let network: LocalNetworkAdapter;
  beforeAll(async () => {
    network = adapter();
    h = await harness(network);
  });
  afterAll(() => h.close());

  it('[{uuid}] makes a port on the network: the server shows its address; delete releases it', async () => {
    const r = await post(h, { networks: [{ uuid: 'net-a' }, { uuid: 'net-b' }] }, '2.37');
    expect(r.statusCode).toBe(202);
    const id = r.json().server.id as string;
    const server = await waitForStatus(h, id, 'ACTIVE');
    const ports = await network.listPorts({ instanceId: id });
    expect(ports.map((p) => [p.networkId, p.ipAddress])).toEqual([
      ['net-a', '10.40.0.2'],
      ['net-b', '10.41.0.2'],
    ]);
    expect(server.addresses).toEqual({
      'net-a': [
        {
          addr: '10.40.0.2',
          version: 4,
          'OS-EXT-IPS:type': 'fixed',
          'OS-EXT-IPS-MAC:mac_addr': ports[0]!.macAddress,
        },
      ],
      'net-b': [
        {
          addr: '10.41.0.2',
          version: 4,
          'OS-EXT-IPS:type': 'fixed',
          'OS-EXT-IPS-MAC:mac_addr': ports[1]!.macAddress,
        },
      ],
    });
    expect((await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${id}` })).statusCode).toBe(204);
    await waitForStatus(h, id, 'DELETED');
    await released(network);
    expect(await network.listPorts({ instanceId: id })).toEqual([]);
    expect(await network.listPorts()).toEqual([]);
  });

  it('[{port}] binds a port made beforehand (kept, unbound, on delete); a bound port is 409 PortInUse', async () => {
    const port = await network.createPort({ networkId: 'net-b', ipAddress: '10.41.0.5' });
    const r = await post(h, { networks: [{ port: port.id }] });
    expect(r.statusCode).toBe(202);
    const id = r.json().server.id as string;
    const server = await waitForStatus(h, id, 'ACTIVE');
    expect(server.addresses).toMatchObject({ 'net-b': [{ addr: '10.41.0.5' }] });
    expect(await network.getPort(port.id)).toMatchObject({ instanceId: id });

    const again = await post(h, { networks: [{ port: port.id }] });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      conflictingRequest: { code: 409, message: `Port ${port.id} is still in use.` },
    });

    expect((await h.call('alice', { method: 'DELETE', url: `/v2.1/servers/${id}` })).statusCode).toBe(204);
    await waitForStatus(h, id, 'DELETED');
    await released(network);
    expect((await network.getPort(port.id)).instanceId).toBeUndefined();
    await network.deletePort(port.id);
  });

  it('answers Nova 400s for an unknown network or port, and refuses what it cannot honour', async () => {
    const cases: [unknown, string, string?][] = [
      [[{ uuid: 'nope' }], 'Network nope could not be found.'],
      [
        [{ port: '0b7a3f5e-1111-4222-8333-944445555666' }],
        'Port id 0b7a3f5e-1111-4222-8333-944445555666 could not be found.',
      ],
      [[{ fixed_ip: '10.40.0.9' }], "Bad network format: missing 'uuid'"],
      [[{ uuid: 'net-a', fixed_ip: '10.40.0.9' }], 'Invalid input for field/attribute networks[0].fixed_ip'],
      [
        [{ port: 'p-1', fixed_ip: '10.40.0.9' }],
        "Specified Fixed IP '10.40.0.9' cannot be used with port 'p-1'",
      ],
      [[{ port: 'p-1' }, { port: 'p-1' }], "Port ID 'p-1' was specified twice"],
      [[{ uuid: 'net-a', bogus: 1 }], 'Invalid input for field/attribute body.server.networks'],
    ];
    for (const [networks, message] of cases) {
      const r = await post(h, { networks });
      expect(r.statusCode, JSON.stringify(networks)).toBe(400);
      expect(r.json().badRequest.message).toContain(message);
    }
    const many = await post(h, { networks: [{ port: 'p-1' }], max_count: 2 });
    expect(many.statusCode).toBe(400);
    expect(many.json().badRequest.message).toContain(
      'Unable to launch multiple instances with a single configured port ID',
    );
    expect(await network.listPorts()).toEqual([]);
  });

  it('refuses hostile network and port ids with a 400 naming networks[i].uuid / .port', async () => {
    const hostile = [
      "net-a'; DROP TABLE ports; --",
      '../../etc/passwd',
      'net_a',
      'net a',
      '-net',
      'net\u0000a',
      '<net/>',
      '$(reboot)',
      'x'.repeat(65),
      '',
    ];
    for (const value of hostile) {
      const r = await post(h, { networks: [{ uuid: 'net-a' }, { uuid: value }] });
      expect(r.statusCode, value).toBe(400);
      expect(r.json().badRequest.message).toContain('networks[1].uuid');
      expect(r.json().badRequest.message).not.toContain(value || '\u0001');
      if (value.length === 65) continue; // a valid port id (up to 128)
      const p = await post(h, { networks: [{ port: value }] });
      expect(p.statusCode, value).toBe(400);
      expect(p.json().badRequest.message).toContain('networks[0].port');
    }
    const long = await post(h, { networks: [{ uuid: 'x'.repeat(2000) }] });
    expect(long.statusCode).toBe(400);
    expect(await network.listPorts()).toEqual([]);
  });

  it('"auto", "none" and an absent networks follow the microversion; two networks make auto ambiguous (409)', async () => {
    const ambiguous =
      'More than one possible network found. Specify network ID(s) to select which one(s) to connect to.';
    for (const [server, version] of [
      [{ networks: 'auto' }, '2.37'],
      [{}, '2.1'],
      [{ networks: [] }, '2.1'],
    ] as const) {
      const r = await post(h, server, version);
      expect(r.statusCode, JSON.stringify(server)).toBe(409);
      expect(r.json().conflictingRequest.message).toBe(ambiguous);
    }
    const none = await post(h, { networks: 'none' }, '2.37');
    expect(none.statusCode).toBe(202);
    const id = none.json().server.id as string;
    expect((await waitForStatus(h, id, 'ACTIVE')).addresses).toEqual({});
    expect(await network.listPorts({ instanceId: id })).toEqual([]);

    const absent = await post(h, {}, '2.37');
    expect(absent.statusCode).toBe(400);
    expect(absent.json().badRequest.message).toContain("'networks' is a required property");
    const early = await post(h, { networks: 'none' }, '2.36');
    expect(early.statusCode).toBe(400);
    expect(early.json().badRequest.message).toContain("'none' is not of type 'array'");
  });

  it('"auto" and an absent networks (below 2.37) use the only network when there is one', async () => {
    const single = adapter([{ id: 'only', cidr: '10.42.0.0/28', name: 'only' }]);
    const one = await harness(single);
    try {
      for (const [server, version] of [
        [{ networks: 'auto' }, '2.37'],
        [{}, '2.1'],
      ] as const) {
        const r = await post(one, server, version);
        expect(r.statusCode).toBe(202);
        const id = r.json().server.id as string;
        const shown = await waitForStatus(one, id, 'ACTIVE');
        expect(Object.keys(shown.addresses as object)).toEqual(['only']);
        expect(await single.listPorts({ instanceId: id })).toHaveLength(1);
      }
    } finally {
      await one.close();
    }
  });

  it('lists and shows the networks through the os-networks proxy (up to 2.35)', async () => {
    const list = await h.call('rita', { method: 'GET', url: '/v2.1/os-networks' });
    expect(list.statusCode).toBe(200);
    expect(list.json().networks.map((n: { id: string; label: string }) => [n.id, n.label])).toEqual([
      ['net-a', 'private'],
      ['net-b', 'net-b'],
    ]);
    const show = await h.call('rita', { method: 'GET', url: '/v2.1/os-networks/net-b' });
    expect(show.statusCode).toBe(200);
    expect(show.json().network).toMatchObject({
      id: 'net-b',
      label: 'net-b',
      cidr: '10.41.0.0/29',
      netmask: '255.255.255.248',
      gateway: '10.41.0.1',
      broadcast: '10.41.0.7',
      dns1: null,
      cidr_v6: null,
    });
    const missing = await h.call('rita', { method: 'GET', url: '/v2.1/os-networks/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().itemNotFound.message).toBe('Network not found');
    const late = await h.call('rita', { method: 'GET', url: '/v2.1/os-networks', headers: mv('2.36') });
    expect(late.statusCode).toBe(404);
    expect((await h.call(null, { method: 'GET', url: '/v2.1/os-networks' })).statusCode).toBe(401);
  });
});

describe('POST /servers with networks on a cloud without a network service', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await harness(undefined);
  });
  afterAll(() => h.close());

  it('a named network or port is not found (400); auto, an empty list and none make no interface', async () => {
    const r = await post(h, { networks: [{ uuid: 'private' }] });
    expect(r.statusCode).toBe(400);
    expect(r.json().badRequest.message).toBe('Network private could not be found.');
    const p = await post(h, { networks: [{ port: 'p-1' }] });
    expect(p.statusCode).toBe(400);
    expect(p.json().badRequest.message).toBe('Port id p-1 could not be found.');
    for (const [server, version] of [
      [{ networks: 'auto' }, '2.37'],
      [{ networks: [] }, '2.1'],
      [{}, '2.1'],
      [{ networks: 'none' }, '2.37'],
    ] as const) {
      const c = await post(h, server, version);
      expect(c.statusCode, JSON.stringify(server)).toBe(202);
      expect((await waitForStatus(h, c.json().server.id, 'ACTIVE')).addresses).toEqual({});
    }
    const list = await h.call('alice', { method: 'GET', url: '/v2.1/os-networks' });
    expect(list.json()).toEqual({ networks: [] });
  });
});
