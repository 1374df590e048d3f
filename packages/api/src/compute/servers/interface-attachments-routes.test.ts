import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalNetworkAdapter } from '@nova-lfs/network-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../../testing/api-harness.test-helper.js';
import { action, createServer, mv, serversHarness, waitForStatus } from './servers.test-helper.js';

const root = mkdtempSync(join(tmpdir(), 'nlfs-os-interface-'));
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

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const mac = /^fa:16:3e(:[0-9a-f]{2}){3}$/;

describe('os-interface (real LocalNetworkAdapter, FAKE driver)', () => {
  let h: ApiHarness;
  let network: LocalNetworkAdapter;
  let id: string;
  const url = (serverId = id) => `/v2.1/servers/${serverId}/os-interface`;
  const attach = (payload: unknown, token = 'alice', headers: Record<string, string> = {}) =>
    h.call(token, { method: 'POST', url: url(), payload: payload as object, headers });
  const list = (token = 'alice', serverId = id, headers: Record<string, string> = {}) =>
    h.call(token, { method: 'GET', url: url(serverId), headers });

  beforeAll(async () => {
    network = adapter();
    h = await serversHarness({ cloud: { hosts: 1, core: { network } } });
    id = await createServer(h, 'alice', { name: 'nics' });
    await waitForStatus(h, id, 'ACTIVE');
  });
  afterAll(() => h.close());

  it('attaches a new port on a network (200 with the attachment), lists and shows it, and the server shows its address', async () => {
    expect((await list()).json()).toEqual({ interfaceAttachments: [] });
    const r = await attach({ interfaceAttachment: { net_id: 'net-a' } });
    expect(r.statusCode).toBe(200);
    const a = r.json().interfaceAttachment;
    expect(a).toEqual({
      net_id: 'net-a',
      port_id: expect.stringMatching(uuid),
      mac_addr: expect.stringMatching(mac),
      port_state: 'ACTIVE',
      fixed_ips: [{ ip_address: '10.40.0.2', subnet_id: 'net-a' }],
    });
    expect(await network.getPort(a.port_id)).toMatchObject({ instanceId: id, ipAddress: '10.40.0.2' });
    expect(h.cloud.drivers[0]!.guest(id)?.interfaces).toEqual({ [a.port_id]: a.mac_addr });

    expect((await list()).json().interfaceAttachments).toEqual([a]);
    // 2.70 adds the tag (null: tags are not stored)
    expect((await list('rita', id, mv('2.70'))).json().interfaceAttachments).toEqual([{ ...a, tag: null }]);
    const show = await h.call('rita', { method: 'GET', url: `${url()}/${a.port_id}` });
    expect(show.statusCode).toBe(200);
    expect(show.json()).toEqual({ interfaceAttachment: a });

    const server = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` })).json().server;
    expect(server.addresses).toEqual({
      'net-a': [
        { addr: '10.40.0.2', version: 4, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': a.mac_addr },
      ],
    });
    const detail = (await h.call('alice', { method: 'GET', url: '/v2.1/servers/detail' })).json().servers;
    expect(detail.find((s: { id: string }) => s.id === id).addresses['net-a'][0].addr).toBe('10.40.0.2');
  });

  it('attaches a port made beforehand, detaches it (202; unbound and kept) and a network port (202; deleted)', async () => {
    const port = await network.createPort({ networkId: 'net-b', ipAddress: '10.41.0.5' });
    const r = await attach({ interfaceAttachment: { port_id: port.id } });
    expect(r.statusCode).toBe(200);
    expect(r.json().interfaceAttachment).toEqual({
      net_id: 'net-b',
      port_id: port.id,
      mac_addr: port.macAddress,
      port_state: 'ACTIVE',
      fixed_ips: [{ ip_address: '10.41.0.5', subnet_id: 'net-b' }],
    });
    const server = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${id}` })).json().server;
    expect(Object.keys(server.addresses)).toEqual(['net-a', 'net-b']);

    const del = await h.call('alice', { method: 'DELETE', url: `${url()}/${port.id}` });
    expect(del.statusCode).toBe(202);
    expect(await network.getPort(port.id)).toEqual(port);
    expect((await list()).json().interfaceAttachments.map((x: { net_id: string }) => x.net_id)).toEqual([
      'net-a',
    ]);
    const made = (await list()).json().interfaceAttachments[0].port_id as string;
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${made}` })).statusCode).toBe(202);
    await expect(network.getPort(made)).rejects.toMatchObject({ code: 'NLFS_NOT_FOUND' });
    expect((await list()).json().interfaceAttachments).toEqual([]);
    expect((await h.services.engine.get(id)).ports).toEqual([]);
    expect(h.cloud.drivers[0]!.guest(id)?.interfaces).toEqual({});
    const actions = (await h.services.engine.listActions(id)).map((x) => [x.action, x.result]);
    expect(actions.slice(-4)).toEqual([
      ['attach_interface', 'success'],
      ['attach_interface', 'success'],
      ['detach_interface', 'success'],
      ['detach_interface', 'success'],
    ]);
  });

  it('answers Nova’s errors: both ids 400, bad bodies 400 naming the field, unknown network/port 404, port in use 409, not attached 404, unknown server 404', async () => {
    const expect400 = async (payload: unknown, field: string, headers: Record<string, string> = {}) => {
      const r = await attach(payload, 'alice', headers);
      expect(r.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
      expect(r.json().badRequest.message, JSON.stringify(payload).slice(0, 80)).toContain(field);
    };
    await expect400({ interfaceAttachment: { net_id: 'net-a', port_id: 'p' } }, 'network_id and port_id');
    for (const bad of [
      "net'; DROP TABLE instances;--",
      '$(reboot)',
      '<interface type="bridge"/>',
      '{"a":1}',
      'a\u0000b',
      'n'.repeat(10_000),
      '',
      42,
    ]) {
      await expect400({ interfaceAttachment: { net_id: bad } }, 'body.interfaceAttachment.net_id');
      await expect400({ interfaceAttachment: { port_id: bad } }, 'body.interfaceAttachment.port_id');
    }
    // an id the engine takes but the adapter does not ('.' is not in a network id)
    await expect400({ interfaceAttachment: { net_id: 'net.a' } }, 'body.interfaceAttachment.net_id');
    await expect400({ interfaceAttachment: { net_id: 'net-a', extra: 1 } }, 'body.interfaceAttachment');
    await expect400({ other: {} }, 'body');
    await expect400({ interfaceAttachment: 'net-a' }, 'body.interfaceAttachment');
    await expect400(
      { interfaceAttachment: { fixed_ips: [{ ip_address: '10.40.0.9' }] } },
      'Must input network_id when request IP address',
    );
    await expect400(
      { interfaceAttachment: { net_id: 'net-a', fixed_ips: [{ ip_address: '10.40.0.9' }] } },
      'fixed IP',
    );
    await expect400({ interfaceAttachment: { net_id: 'net-a', tag: 'x' } }, 'tag');
    await expect400({ interfaceAttachment: { net_id: 'net-a', tag: 'x' } }, 'Tagged', mv('2.49'));
    // two networks configured and none named: Nova's NetworkAmbiguous
    await expect400({ interfaceAttachment: {} }, 'net_id');

    const noNet = await attach({ interfaceAttachment: { net_id: 'net-x' } });
    expect(noNet.statusCode).toBe(404);
    expect(noNet.json().itemNotFound.message).toBe('Network net-x could not be found.');
    const noPort = await attach({ interfaceAttachment: { port_id: 'port-x' } });
    expect(noPort.statusCode).toBe(404);
    expect(noPort.json().itemNotFound.message).toBe('Port id port-x could not be found.');

    const other = await createServer(h, 'alice', { name: 'other' });
    await waitForStatus(h, other, 'ACTIVE');
    const port = await network.createPort({ networkId: 'net-a' });
    expect(
      (
        await h.call('alice', {
          method: 'POST',
          url: url(other),
          payload: { interfaceAttachment: { port_id: port.id } },
        })
      ).statusCode,
    ).toBe(200);
    const inUse = await attach({ interfaceAttachment: { port_id: port.id } });
    expect(inUse.statusCode).toBe(409);
    expect(inUse.json().conflictingRequest.message).toContain('in use');
    // the same port again on the server that has it
    const again = await h.call('alice', {
      method: 'POST',
      url: url(other),
      payload: { interfaceAttachment: { port_id: port.id } },
    });
    expect(again.statusCode).toBe(409);

    for (const [method, path] of [
      ['GET', `${url()}/${port.id}`],
      ['DELETE', `${url()}/${port.id}`],
      ['GET', `${url()}/not-a-port`],
      ['DELETE', `${url()}/%60id%60`],
    ] as const) {
      const r = await h.call('alice', { method, url: path });
      expect(r.statusCode, `${method} ${path}`).toBe(404);
    }
    for (const method of ['GET', 'POST'] as const) {
      const r = await h.call('alice', {
        method,
        url: url('00000000-0000-4000-8000-000000000000'),
        ...(method === 'POST' ? { payload: { interfaceAttachment: {} } } : {}),
      });
      expect(r.statusCode).toBe(404);
    }
    expect((await h.services.engine.get(id)).ports).toEqual([]);
  });

  it('refuses a locked server (409) and one in the wrong state (409); an admin attaches to a locked one', async () => {
    const admin = { userId: 'admin-id', projectId: 'admin', isAdmin: true };
    await h.services.engine.lock(id, { reason: 'hold' }, admin);
    const locked = await attach({ interfaceAttachment: { net_id: 'net-a' } });
    expect(locked.statusCode).toBe(409);
    const byAdmin = await attach({ interfaceAttachment: { net_id: 'net-a' } }, 'admin');
    expect(byAdmin.statusCode).toBe(200);
    const portId = byAdmin.json().interfaceAttachment.port_id;
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${portId}` })).statusCode).toBe(409);
    await h.services.engine.unlock(id, admin);

    expect((await action(h, 'alice', id, { suspend: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'SUSPENDED');
    const suspended = await attach({ interfaceAttachment: { net_id: 'net-a' } });
    expect(suspended.statusCode).toBe(409);
    expect(suspended.json().conflictingRequest.message).toContain('attach_interface');
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${portId}` })).statusCode).toBe(409);
    expect((await action(h, 'alice', id, { resume: null })).statusCode).toBe(202);
    await waitForStatus(h, id, 'ACTIVE');
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${portId}` })).statusCode).toBe(202);
    expect((await network.listPorts({ instanceId: id })).length).toBe(0);
  });

  it('answers Nova’s 500 when the driver fails to plug the port in (nothing left bound), and 202 when an accepted detach fails', async () => {
    const driver = h.cloud.drivers[0]!;
    driver.failNext('attachInterface', { times: 1, message: 'hot-plug refused at /var/lib/secret' });
    const failed = await attach({ interfaceAttachment: { net_id: 'net-a' } });
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('/var/lib/secret');
    expect(failed.json().computeFault.message).toBe(`Failed to attach network adapter device to ${id}`);
    expect(await network.listPorts({ instanceId: id })).toEqual([]);

    const ok = (await attach({ interfaceAttachment: { net_id: 'net-a' } })).json().interfaceAttachment;
    driver.failNext('detachInterface', { times: 1, message: 'device busy' });
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${ok.port_id}` })).statusCode).toBe(202);
    // the detach failed after it was accepted: the port stays, the action says why
    expect((await list()).json().interfaceAttachments.map((x: { port_id: string }) => x.port_id)).toEqual([
      ok.port_id,
    ]);
    expect((await h.services.engine.listActions(id)).at(-1)).toMatchObject({
      action: 'detach_interface',
      result: 'error',
    });
    expect((await h.call('alice', { method: 'DELETE', url: `${url()}/${ok.port_id}` })).statusCode).toBe(202);
    expect((await list()).json().interfaceAttachments).toEqual([]);
  });

  it('authorizes: readers list and show but cannot attach or detach (403); another project’s server is 404', async () => {
    const port = (await attach({ interfaceAttachment: { net_id: 'net-b' } })).json().interfaceAttachment;
    expect((await list('rita')).statusCode).toBe(200);
    expect((await attach({ interfaceAttachment: { net_id: 'net-a' } }, 'rita')).statusCode).toBe(403);
    expect((await h.call('rita', { method: 'DELETE', url: `${url()}/${port.port_id}` })).statusCode).toBe(
      403,
    );
    for (const [method, path] of [
      ['GET', url()],
      ['GET', `${url()}/${port.port_id}`],
      ['POST', url()],
      ['DELETE', `${url()}/${port.port_id}`],
    ] as const) {
      const r = await h.call('bob', {
        method,
        url: path,
        ...(method === 'POST' ? { payload: { interfaceAttachment: { net_id: 'net-a' } } } : {}),
      });
      expect(r.statusCode, `${method} ${path}`).toBe(404);
      expect(r.json().itemNotFound.message).toBe(`Instance ${id} could not be found.`);
    }
    expect((await h.call(null, { method: 'GET', url: url() })).statusCode).toBe(401);
    // an admin sees and acts on any project's server
    expect((await list('admin')).json().interfaceAttachments).toHaveLength(1);
    expect((await h.call('admin', { method: 'DELETE', url: `${url()}/${port.port_id}` })).statusCode).toBe(
      202,
    );
    expect(h.services.policy.rules()).toMatchObject({
      'os_compute_api:os-attach-interfaces:list': 'rule:project_reader_or_admin',
      'os_compute_api:os-attach-interfaces:show': 'rule:project_reader_or_admin',
      'os_compute_api:os-attach-interfaces:create': 'rule:project_member_or_admin',
      'os_compute_api:os-attach-interfaces:delete': 'rule:project_member_or_admin',
    });
  });

  it('shows the ports a create bound in addresses and os-interface; a delete releases them', async () => {
    const [vm] = await h.services.engine.create(
      h.cloud.request({ name: 'booted', networks: [{ networkId: 'net-a' }, { networkId: 'net-b' }] }),
    );
    await waitForStatus(h, vm!.id, 'ACTIVE');
    const server = (await h.call('alice', { method: 'GET', url: `/v2.1/servers/${vm!.id}` })).json().server;
    expect(Object.keys(server.addresses)).toEqual(['net-a', 'net-b']);
    expect((await list('alice', vm!.id)).json().interfaceAttachments).toHaveLength(2);
    // the engine's delete resolves once ports are released (the record may go first)
    await h.services.engine.delete(vm!.id);
    expect((await h.call('alice', { method: 'GET', url: `/v2.1/servers/${vm!.id}` })).statusCode).toBe(404);
    expect(await network.listPorts({ instanceId: vm!.id })).toEqual([]);
  });
});

describe('os-interface edge configurations', () => {
  it('uses the only network for an empty attachment; a full subnet is 400; a driver without hot-plug is 400', async () => {
    const network = adapter([{ id: 'solo', cidr: '10.42.0.0/30' }]);
    const h = await serversHarness({ cloud: { hosts: 1, core: { network } } });
    try {
      const id = await createServer(h, 'alice');
      await waitForStatus(h, id, 'ACTIVE');
      const post = (payload: unknown) =>
        h.call('alice', {
          method: 'POST',
          url: `/v2.1/servers/${id}/os-interface`,
          payload: payload as object,
        });
      const one = await post({ interfaceAttachment: {} });
      expect(one.statusCode).toBe(200);
      expect(one.json().interfaceAttachment).toMatchObject({
        net_id: 'solo',
        fixed_ips: [{ ip_address: '10.42.0.2' }],
      });
      const full = await post({ interfaceAttachment: {} });
      expect(full.statusCode).toBe(400);
      expect(full.json().badRequest.message).toContain('Zero fixed IPs available');
      expect((await post(null)).statusCode).toBe(400);
    } finally {
      await h.close();
    }

    const plain = await serversHarness({
      cloud: { hosts: 1, core: { network: adapter() }, driver: { capabilities: { interfaceAttach: false } } },
    });
    try {
      const id = await createServer(plain, 'alice');
      await waitForStatus(plain, id, 'ACTIVE');
      const r = await plain.call('alice', {
        method: 'POST',
        url: `/v2.1/servers/${id}/os-interface`,
        payload: { interfaceAttachment: { net_id: 'net-a' } },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().badRequest.message).toBe(`Attaching interfaces is not supported for instance ${id}.`);
    } finally {
      await plain.close();
    }
  });

  it('answers 400 when the engine has no network adapter', async () => {
    const h = await serversHarness({ cloud: { hosts: 1 } });
    try {
      const id = await createServer(h, 'alice');
      await waitForStatus(h, id, 'ACTIVE');
      const r = await h.call('alice', {
        method: 'POST',
        url: `/v2.1/servers/${id}/os-interface`,
        payload: { interfaceAttachment: {} },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().badRequest.message).toContain('no network service');
      expect((await h.services.engine.get(id)).ports ?? []).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
