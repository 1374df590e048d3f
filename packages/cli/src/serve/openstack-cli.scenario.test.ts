import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerAvailable, makeBusyboxRootfs, startDockerCommand } from '@nova-lfs/driver-docker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAdminToken } from '../testing/serve-process.js';
import { type CliResult, cli, freePort, type ServeProcess, startServe } from './serve-process.test-helper.js';

/**
 * The issue's scenario with the real clients of Debian 12 (`python3-openstackclient` 6.0,
 * `python3-novaclient` 18.1) against `nova-lfs serve` with three Docker hosts on the local dockerd.
 */
const openstackBin = '/usr/bin/openstack';
const novaBin = '/usr/bin/nova';
const clientsInstalled = existsSync(openstackBin) && existsSync(novaBin);
const docker = await dockerAvailable();
const ready = clientsInstalled && docker;
if (!ready) {
  const why = !clientsInstalled
    ? 'the openstack and nova clients are not installed (bash scripts/install-system.sh)'
    : `dockerd is not reachable (${startDockerCommand})`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  console.warn(`skipping the openstack CLI scenario: ${why}`);
}

const password = 'scenario-admin-secret';
const hostPrefix = `scn${process.pid}`;
const hosts = [1, 2, 3].map((i) => `${hostPrefix}-${i}`);

describe.runIf(ready)('the openstack and nova CLIs against nova-lfs serve (Docker hosts)', () => {
  let serve: ServeProcess;
  let dir: string;
  let tarPath: string;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};

  const os = (args: readonly string[], extraEnv: Record<string, string> = {}) =>
    cli(openstackBin, args, { ...env, ...extraEnv });
  const osJson = async (args: readonly string[], extraEnv: Record<string, string> = {}) => {
    const r = await os([...args, '-f', 'json'], extraEnv);
    expect(r.code, `openstack ${args.join(' ')}\n${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout);
  };
  const ok = (r: CliResult, what: string) => expect(r.code, `${what}\n${r.stderr}\n${r.stdout}`).toBe(0);
  /** Waits (through the API, as `--wait` does) until the server shows `status`. */
  const statusOf = async (name: string) =>
    (await osJson(['server', 'show', name, '-c', 'status'])).status as string;
  const waitStatus = async (name: string, status: string) => {
    for (let i = 0; i < 120; i++) {
      const s = await statusOf(name);
      if (s === status) return;
      if (s === 'ERROR') throw new Error(`${name} went to ERROR`);
    }
    throw new Error(`${name} never reached ${status}`);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nlfs-scenario-'));
    tarPath = join(dir, 'busybox.tar');
    await makeBusyboxRootfs(tarPath);
    const port = await freePort();
    serve = await startServe(
      [
        '--data-dir',
        join(dir, 'data'),
        '--admin-password',
        password,
        ...hosts.flatMap((h) => ['--docker-host', h]),
        '--log-level',
        'warn',
      ],
      port,
    );
    env = {
      OS_AUTH_URL: `${serve.url}/v3`,
      OS_IDENTITY_API_VERSION: '3',
      OS_USERNAME: 'admin',
      OS_PASSWORD: password,
      OS_PROJECT_NAME: 'admin',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
  });

  afterAll(async () => {
    if (serve) {
      // servers left by a failed step: delete them through the API before stopping
      const left = await os(['server', 'list', '--all-projects', '-f', 'value', '-c', 'ID']);
      for (const id of left.stdout.split('\n').filter(Boolean)) await os(['server', 'delete', '--wait', id]);
      expect(await serve.stop()).toBe(0);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints the OS_* variables and issues a token', async () => {
    expect(serve.output()).toContain(`export OS_AUTH_URL=${serve.url}/v3`);
    expect(serve.output()).not.toContain(password);
    const token = await osJson(['token', 'issue']);
    expect(token.id).toMatch(/\S{20,}/);
    expect(Date.parse(token.expires) - Date.now()).toBeGreaterThan(120_000);
    expect(token.project_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('creates an image from a file (checksum md5, active) and a flavor', async () => {
    const image = await osJson([
      'image',
      'create',
      '--disk-format',
      'raw',
      '--container-format',
      'docker',
      '--property',
      'hypervisor_type=docker',
      '--file',
      tarPath,
      'busybox',
    ]);
    ids.image = image.id;
    const shown = await osJson(['image', 'show', 'busybox']);
    expect(shown.status).toBe('active');
    expect(shown.checksum).toBe(createHash('md5').update(readFileSync(tarPath)).digest('hex'));
    const list = await osJson(['image', 'list']);
    expect(list.map((i: { Name: string }) => i.Name)).toContain('busybox');
    const flavor = await osJson([
      'flavor',
      'create',
      '--ram',
      '64',
      '--vcpus',
      '1',
      '--disk',
      '1',
      'scn.tiny',
    ]);
    expect(flavor).toMatchObject({ name: 'scn.tiny', ram: 64, vcpus: 1, disk: 1 });
    const flavors = await osJson(['flavor', 'list']);
    expect(flavors.map((f: { Name: string }) => f.Name)).toEqual(
      expect.arrayContaining(['m1.tiny', 'scn.tiny']),
    );
  });

  it('creates servers with --wait at the default microversion and at 2.73', async () => {
    const vm1 = await osJson([
      'server',
      'create',
      '--flavor',
      'scn.tiny',
      '--image',
      'busybox',
      '--wait',
      'vm1',
    ]);
    expect(vm1.status).toBe('ACTIVE');
    ids.vm1 = vm1.id;
    const vm2 = await osJson([
      '--os-compute-api-version',
      '2.73',
      'server',
      'create',
      '--flavor',
      'scn.tiny',
      '--image',
      'busybox',
      '--wait',
      'vm2',
    ]);
    expect(vm2.status).toBe('ACTIVE');
    expect(JSON.stringify(vm2.flavor)).toContain('scn.tiny');
  });

  it('creates a server group and three anti-affine servers (--min 3 --max 3) on three hosts', async () => {
    const group = await osJson(['server', 'group', 'create', '--policy', 'anti-affinity', 'spread-grp']);
    expect(group.policy ?? group.policies).toContain('anti-affinity');
    const r = await os([
      'server',
      'create',
      '--flavor',
      'scn.tiny',
      '--image',
      'busybox',
      '--min',
      '3',
      '--max',
      '3',
      '--hint',
      `group=${group.id}`,
      '--wait',
      'spread',
    ]);
    ok(r, 'server create --min 3 --max 3');
    const list = await osJson(['server', 'list', '--long', '--name', '^spread-']);
    expect(list).toHaveLength(3);
    expect(new Set(list.map((s: { Host: string }) => s.Host))).toEqual(new Set(hosts));
    for (const s of list) expect(s.Status).toBe('ACTIVE');
  });

  it('lists (--long, --limit, --all-projects) and shows at both microversions', async () => {
    for (const mv of [[], ['--os-compute-api-version', '2.73']]) {
      const long = await osJson([...mv, 'server', 'list', '--long']);
      expect(long.map((s: { Name: string }) => s.Name)).toEqual(
        expect.arrayContaining(['vm1', 'vm2', 'spread-1']),
      );
      const limited = await osJson([...mv, 'server', 'list', '--limit', '1']);
      expect(limited).toHaveLength(1);
      const all = await osJson([...mv, 'server', 'list', '--all-projects']);
      expect(all.length).toBeGreaterThanOrEqual(5);
      const shown = await osJson([...mv, 'server', 'show', 'vm1']);
      expect(shown).toMatchObject({ id: ids.vm1, name: 'vm1', status: 'ACTIVE' });
      expect(hosts).toContain(shown['OS-EXT-SRV-ATTR:host']);
    }
  });

  it('reboots soft and hard, stops, starts, pauses and unpauses', async () => {
    ok(await os(['server', 'reboot', '--wait', 'vm1']), 'reboot');
    ok(
      await os(['--os-compute-api-version', '2.73', 'server', 'reboot', '--hard', '--wait', 'vm1']),
      'reboot --hard',
    );
    ok(await os(['server', 'stop', 'vm1']), 'stop');
    await waitStatus('vm1', 'SHUTOFF');
    const again = await os(['server', 'stop', 'vm1']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("Cannot 'stop' instance");
    ok(await os(['server', 'start', 'vm1']), 'start');
    await waitStatus('vm1', 'ACTIVE');
    ok(await os(['server', 'pause', 'vm1']), 'pause');
    await waitStatus('vm1', 'PAUSED');
    ok(await os(['server', 'unpause', 'vm1']), 'unpause');
    await waitStatus('vm1', 'ACTIVE');
  });

  it('runs the same lifecycle with --os-compute-api-version 2.73', async () => {
    const mv = ['--os-compute-api-version', '2.73'];
    ok(await os([...mv, 'server', 'reboot', '--wait', 'vm2']), 'reboot 2.73');
    ok(await os([...mv, 'server', 'reboot', '--hard', '--wait', 'vm2']), 'reboot --hard 2.73');
    ok(await os([...mv, 'server', 'stop', 'vm2']), 'stop 2.73');
    await waitStatus('vm2', 'SHUTOFF');
    ok(await os([...mv, 'server', 'start', 'vm2']), 'start 2.73');
    await waitStatus('vm2', 'ACTIVE');
    ok(await os([...mv, 'server', 'pause', 'vm2']), 'pause 2.73');
    await waitStatus('vm2', 'PAUSED');
    ok(await os([...mv, 'server', 'unpause', 'vm2']), 'unpause 2.73');
    await waitStatus('vm2', 'ACTIVE');
    ok(await os([...mv, 'console', 'log', 'show', 'vm2']), 'console log show 2.73');
    const image = await osJson([...mv, 'server', 'image', 'create', '--name', 'vm2-snap', '--wait', 'vm2']);
    expect(image.name).toBe('vm2-snap');
    const group = await osJson([...mv, 'server', 'group', 'create', '--policy', 'affinity', 'together']);
    expect(group.policy).toBe('affinity');
    const zones = await osJson([...mv, 'availability', 'zone', 'list', '--compute']);
    expect(zones.map((z: { 'Zone Name': string }) => z['Zone Name'])).toContain('nova');
    const services = await osJson([...mv, 'compute', 'service', 'list']);
    expect(services.filter((x: { Binary: string }) => x.Binary === 'nova-compute')).toHaveLength(3);
    ok(await os([...mv, 'quota', 'set', '--instances', '9', 'admin']), 'quota set 2.73');
    expect((await osJson([...mv, 'quota', 'show'])).instances).toBe(9);
    ok(await os([...mv, 'quota', 'set', '--instances', '10', 'admin']), 'quota set back 2.73');
  });

  it('shows the console log and the server events (list and show)', async () => {
    const log = await os(['console', 'log', 'show', 'vm1']);
    ok(log, 'console log show');
    for (const mv of [[], ['--os-compute-api-version', '2.73']]) {
      const events = await osJson([...mv, 'server', 'event', 'list', 'vm1']);
      const actions = events.map((e: { Action: string }) => e.Action);
      expect(actions).toEqual(
        expect.arrayContaining(['create', 'reboot', 'stop', 'start', 'pause', 'unpause']),
      );
      const create = events.find((e: { Action: string }) => e.Action === 'create');
      const shown = await osJson([...mv, 'server', 'event', 'show', 'vm1', create['Request ID']]);
      expect(shown).toMatchObject({ action: 'create', instance_uuid: ids.vm1 });
    }
  });

  it('snapshots a server into an image (server image create --wait)', async () => {
    const image = await osJson(['server', 'image', 'create', '--name', 'vm1-snap', '--wait', 'vm1']);
    expect(image.name).toBe('vm1-snap');
    const shown = await osJson(['image', 'show', 'vm1-snap']);
    expect(shown.status).toBe('active');
    expect(shown.visibility).toBe('private');
  });

  it('shows and sets quota, and a create over quota is refused', async () => {
    for (const mv of [[], ['--os-compute-api-version', '2.73']]) {
      const quota = await osJson([...mv, 'quota', 'show']);
      expect(quota.instances).toBe(10);
    }
    ok(await os(['quota', 'set', '--instances', '5', 'admin']), 'quota set');
    expect((await osJson(['quota', 'show'])).instances).toBe(5);
    const refused = await os(['server', 'create', '--flavor', 'scn.tiny', '--image', 'busybox', 'too-many']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Quota exceeded for instances');
    const list = await osJson(['server', 'list', '--name', 'too-many']);
    expect(list).toHaveLength(0);
    ok(await os(['quota', 'set', '--instances', '10', 'admin']), 'quota set back');
  });

  it('lists and shows hypervisors, availability zones and compute services', async () => {
    for (const mv of [[], ['--os-compute-api-version', '2.73']]) {
      const hvs = await osJson([...mv, 'hypervisor', 'list']);
      expect(hvs.map((h: { 'Hypervisor Hostname': string }) => h['Hypervisor Hostname']).sort()).toEqual(
        hosts,
      );
      const hv = await osJson([...mv, 'hypervisor', 'show', hosts[0]!]);
      expect(hv.hypervisor_hostname).toBe(hosts[0]);
      expect(hv.hypervisor_type).toBe('docker');
    }
    const zones = await osJson(['availability', 'zone', 'list', '--compute']);
    expect(zones.map((z: { 'Zone Name': string }) => z['Zone Name'])).toContain('nova');
    const services = await osJson(['compute', 'service', 'list']);
    const computes = services.filter((s: { Binary: string }) => s.Binary === 'nova-compute');
    expect(computes.map((s: { Host: string }) => s.Host).sort()).toEqual(hosts);
    expect(computes.every((s: { State: string }) => s.State === 'up')).toBe(true);
  });

  it('works with the nova CLI too', async () => {
    const nova = (args: readonly string[]) => cli(novaBin, args, env);
    const list = await nova(['list']);
    ok(list, 'nova list');
    expect(list.stdout).toContain('vm1');
    const show = await nova(['show', 'vm1']);
    ok(show, 'nova show');
    expect(show.stdout).toContain(ids.vm1!);
    const hv = await nova(['hypervisor-list']);
    ok(hv, 'nova hypervisor-list');
    expect(hv.stdout).toContain(hosts[0]!);
    const bad = await nova(['stop', 'no-such-server']);
    expect(bad.code).not.toBe(0);
  });

  it("keeps projects apart, refuses a reader's create, a bad token and malformed JSON", async () => {
    ok(await os(['project', 'create', 'other']), 'project create');
    ok(
      await os(['user', 'create', '--project', 'other', '--password', 'other-secret-1', 'olga']),
      'user create',
    );
    ok(await os(['role', 'add', '--project', 'other', '--user', 'olga', 'member']), 'role add member');
    ok(
      await os(['user', 'create', '--project', 'admin', '--password', 'reader-secret-1', 'rudi']),
      'user create',
    );
    ok(await os(['role', 'add', '--project', 'admin', '--user', 'rudi', 'reader']), 'role add reader');
    const olga = { OS_USERNAME: 'olga', OS_PASSWORD: 'other-secret-1', OS_PROJECT_NAME: 'other' };
    const mine = await osJson(['server', 'list'], olga);
    expect(mine).toHaveLength(0);
    const peek = await os(['server', 'show', ids.vm1!], olga);
    expect(peek.code).not.toBe(0);
    expect(peek.stderr).toMatch(/No server with a name or ID|could not be found/);
    const kill = await os(['server', 'delete', ids.vm1!], olga);
    expect(kill.code).not.toBe(0);
    expect(await statusOf('vm1')).toBe('ACTIVE');
    const rudi = { OS_USERNAME: 'rudi', OS_PASSWORD: 'reader-secret-1' };
    expect((await osJson(['server', 'list'], rudi)).length).toBeGreaterThan(0);
    const create = await os(
      ['server', 'create', '--flavor', 'scn.tiny', '--image', 'busybox', 'reader-vm'],
      rudi,
    );
    expect(create.code).not.toBe(0);
    expect(create.stderr).toContain('403');
    const wrong = await os(['token', 'issue'], { OS_PASSWORD: 'not-the-password' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('401');
    const badToken = await fetch(`${serve.url}/v2.1/servers`, {
      headers: { 'x-auth-token': 'gAAAAAB-forged' },
    });
    expect(badToken.status).toBe(401);
    const { token } = await issueAdminToken(serve.url, password);
    const malformed = await fetch(`${serve.url}/v2.1/servers`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: '{"server": {"name": ',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { badRequest: { message: string } }).badRequest.message).toContain(
      'JSON',
    );
    const missingField = await fetch(`${serve.url}/v2.1/servers`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ server: { name: 'x', flavorRef: '1' } }),
    });
    expect(missingField.status).toBe(400);
    expect(((await missingField.json()) as { badRequest: { message: string } }).badRequest.message).toContain(
      'body.server.imageRef',
    );
  });

  it('deletes every server with --wait (each becomes a 404) and leaves no container behind', async () => {
    const list = await osJson(['server', 'list', '--all-projects']);
    for (const s of list) ok(await os(['server', 'delete', '--wait', s.ID]), `delete ${s.Name}`);
    expect(await osJson(['server', 'list', '--all-projects'])).toHaveLength(0);
    const ps = await cli('docker', ['ps', '-a', '--filter', `label=nova-lfs.host=${hosts[0]}`, '-q'], env);
    expect(ps.stdout.trim()).toBe('');
  });
});
