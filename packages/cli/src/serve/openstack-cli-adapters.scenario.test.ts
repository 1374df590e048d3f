import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../testing/serve-process.js';
import { adminEnv, clients, clientsMissing, novaTable as table } from './openstack-clients.test-helper.js';
import { freePort, type ServeProcess, startServe } from './serve-process.test-helper.js';

/**
 * Networks and volumes through `nova-lfs serve --network ... --volumes` with the real clients of
 * Debian 12 (`python3-openstackclient` 6.0, `python3-novaclient` 18.1) and two FAKE hosts:
 * `server create --nic net-id=X` (OSC resolves X through Nova's os-networks proxy: there is no
 * Neutron endpoint), `--nic none`, an unknown network, interface attach / list / detach, a volume
 * made with `nova-lfs volume create` attached, listed and detached, and the ports released on
 * delete.
 */
const ready = !clientsMissing;
if (clientsMissing) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${clientsMissing}`);
  console.warn(`skipping the openstack CLI adapters scenario: ${clientsMissing}`);
}

const run = promisify(execFile);
const password = 'adapters-admin-secret';

interface StoredPort {
  id: string;
  networkId: string;
  ipAddress: string;
  instanceId?: string;
}

describe.runIf(ready)('networks and volumes with the openstack and nova CLIs against nova-lfs serve', () => {
  let serve: ServeProcess;
  let dir: string;
  let dataDir: string;
  let env: Record<string, string>;
  const { os, nova, ok, osJson, deleteAllServers } = clients(() => env);
  /** The adapter's state file: what serve's LocalNetworkAdapter holds. */
  const ports = (): StoredPort[] => {
    const file = join(dataDir, 'network', 'ports.json');
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { ports: StoredPort[] }).ports : [];
  };
  const printed: string[] = [];
  const log = (what: string, out: string) => printed.push(`$ ${what}\n${out.trim()}`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nlfs-adapters-'));
    dataDir = join(dir, 'data');
    serve = await startServe(
      [
        '--data-dir',
        dataDir,
        '--admin-password',
        password,
        '--fake-hosts',
        '2',
        '--network',
        'private=10.70.0.0/24',
        '--network',
        'storage=10.71.0.0/28,storage net',
        '--volumes',
        '--log-level',
        'warn',
      ],
      await freePort(),
    );
    expect(serve.output()).toContain('networks: private 10.70.0.0/24, storage 10.71.0.0/28');
    env = adminEnv(serve, password);
    const file = join(dir, 'disk.raw');
    writeFileSync(file, Buffer.alloc(64 * 1024, 1));
    ok(await os(['image', 'create', '--disk-format', 'raw', '--file', file, 'net-img']), 'image create');
    ok(await os(['flavor', 'create', '--ram', '64', '--vcpus', '1', '--disk', '1', 'net.small']), 'flavor');
  });

  afterAll(async () => {
    if (serve) {
      await deleteAllServers();
      expect(await serve.stop()).toBe(0);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (printed.length) console.log(printed.join('\n\n'));
  });

  it('server create --nic net-id=private --wait: a 10.70.0.x address; interface attach, list, detach with nova', async () => {
    const created = await osJson([
      'server',
      'create',
      '--image',
      'net-img',
      '--flavor',
      'net.small',
      '--nic',
      'net-id=private',
      '--wait',
      'web',
    ]);
    log(
      'openstack server create --nic net-id=private --wait web -f json (addresses)',
      JSON.stringify(created.addresses),
    );
    const shown = await osJson(['server', 'show', 'web']);
    expect(shown.status).toBe('ACTIVE');
    expect(shown.addresses).toEqual({ private: ['10.70.0.2'] });
    const id = shown.id as string;
    expect(ports()).toEqual([
      expect.objectContaining({ networkId: 'private', ipAddress: '10.70.0.2', instanceId: id }),
    ]);

    const attached = ok(
      await nova(['interface-attach', '--net-id', 'storage', 'web']),
      'nova interface-attach',
    );
    log('nova interface-attach --net-id storage web', attached);
    const listed = ok(await nova(['interface-list', 'web']), 'nova interface-list');
    log('nova interface-list web', listed);
    const [header, ...rows] = table(listed);
    expect(header).toEqual(['Port State', 'Port ID', 'Net ID', 'IP addresses', 'MAC Addr', 'Tag']);
    expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([
      ['ACTIVE', 'private', '10.70.0.2'],
      ['ACTIVE', 'storage', '10.71.0.2'],
    ]);
    const storagePort = rows[1]![1]!;
    expect((await osJson(['server', 'show', 'web'])).addresses).toEqual({
      private: ['10.70.0.2'],
      storage: ['10.71.0.2'],
    });

    ok(await nova(['interface-detach', 'web', storagePort]), 'nova interface-detach');
    const after = ok(await nova(['interface-list', 'web']), 'nova interface-list after detach');
    log(`nova interface-detach web ${storagePort}; nova interface-list web`, after);
    expect(
      table(after)
        .slice(1)
        .map((r) => r[2]),
    ).toEqual(['private']);
    expect(ports().map((p) => p.networkId)).toEqual(['private']);
  });

  it('attaches a volume made with nova-lfs volume create (nova volume-attach), lists it (openstack server volume list), detaches it', async () => {
    const { command, args } = serveCommand();
    const made = await run(command, [
      ...args,
      'volume',
      'create',
      '--data-dir',
      dataDir,
      '--id',
      'data-1',
      '--size-mib',
      '8',
    ]);
    log('nova-lfs volume create --data-dir DIR --id data-1 --size-mib 8', made.stdout);
    expect(JSON.parse(made.stdout)).toMatchObject({ id: 'data-1', sizeMiB: 8, format: 'raw' });

    const attached = ok(await nova(['volume-attach', 'web', 'data-1', '/dev/vdb']), 'nova volume-attach');
    log('nova volume-attach web data-1 /dev/vdb', attached);
    const volumes = await osJson(['server', 'volume', 'list', 'web']);
    log('openstack server volume list web -f json', JSON.stringify(volumes));
    expect(volumes).toEqual([expect.objectContaining({ Device: '/dev/vdb', 'Volume ID': 'data-1' })]);
    const record = JSON.parse(readFileSync(join(dataDir, 'volumes', 'data-1.json'), 'utf8'));
    expect(record.attachedTo).toBe((await osJson(['server', 'show', 'web'])).id);

    ok(await nova(['volume-detach', 'web', 'data-1']), 'nova volume-detach');
    expect(await osJson(['server', 'volume', 'list', 'web'])).toEqual([]);
    const listed = await run(command, [...args, 'volume', 'list', '--data-dir', dataDir]);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.not.objectContaining({ attachedTo: expect.anything() }),
    ]);
  });

  it('server delete releases the ports: the next server on the network gets the same address', async () => {
    const id = (await osJson(['server', 'show', 'web'])).id as string;
    ok(await os(['server', 'delete', '--wait', 'web']), 'server delete');
    ok(
      await os([
        'server',
        'create',
        '--image',
        'net-img',
        '--flavor',
        'net.small',
        '--nic',
        'net-id=private',
        '--wait',
        'web2',
      ]),
      'server create web2',
    );
    const shown = await osJson(['server', 'show', 'web2']);
    expect(shown.addresses).toEqual({ private: ['10.70.0.2'] });
    expect(ports().filter((p) => p.instanceId === id)).toEqual([]);
    expect(ports()).toEqual([expect.objectContaining({ ipAddress: '10.70.0.2', instanceId: shown.id })]);
    ok(await os(['server', 'delete', '--wait', 'web2']), 'server delete web2');
  });

  it('server create --nic none has no address; an unknown network is refused (OSC: not found; nova boot: Nova 400)', async () => {
    ok(
      await os([
        '--os-compute-api-version',
        '2.37',
        'server',
        'create',
        '--image',
        'net-img',
        '--flavor',
        'net.small',
        '--nic',
        'none',
        '--wait',
        'bare',
      ]),
      'server create --nic none',
    );
    expect((await osJson(['server', 'show', 'bare'])).addresses).toEqual({});

    const osc = await os([
      'server',
      'create',
      '--image',
      'net-img',
      '--flavor',
      'net.small',
      '--nic',
      'net-id=nope',
      'x',
    ]);
    log('openstack server create --nic net-id=nope x', osc.stderr);
    expect(osc.code).not.toBe(0);
    // OSC looks nope up in os-networks (404, then a list without it) and stops before the POST
    expect(osc.stderr).toContain('none found (HTTP 404)');

    const boot = await nova([
      'boot',
      '--image',
      'net-img',
      '--flavor',
      'net.small',
      '--nic',
      'net-id=nope',
      'x',
    ]);
    log('nova boot --nic net-id=nope x', boot.stderr);
    expect(boot.code).not.toBe(0);
    expect(boot.stderr).toContain('Network nope could not be found. (HTTP 400)');

    // two networks and none named: Nova's NetworkAmbiguous
    const auto = await os([
      '--os-compute-api-version',
      '2.37',
      'server',
      'create',
      '--image',
      'net-img',
      '--flavor',
      'net.small',
      'y',
    ]);
    log('openstack --os-compute-api-version 2.37 server create y (no --nic: auto)', auto.stderr);
    expect(auto.code).not.toBe(0);
    expect(auto.stderr).toContain('More than one possible network found.');
    expect(auto.stderr).toContain('(HTTP 409)');
    const servers = await osJson(['server', 'list']);
    expect(servers.map((s: { Name: string }) => s.Name)).toEqual(['bare']);
  });
});
