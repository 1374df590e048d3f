import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalVolumeAdapter } from '@nova-lfs/volume-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiServerHarness,
  apiServerHarness,
  harnessAdminPassword,
  seedTenants,
  type Tenants,
  waitForServerStatus,
} from '../../server/api-server.test-helper.js';
import { freePort, propertyTable, tableRows } from '../../testing/cli-output.test-helper.js';
import { waitForInstance } from './servers.test-helper.js';

/**
 * Debian 12's real `nova` (novaclient 18.1) and `openstack` (OSC 6.0) against the whole API
 * listening on a loopback port, over a FAKE host whose volumes are files of a LocalVolumeAdapter.
 * `openstack server add volume` / `remove volume` look the volume up in Cinder first, so they
 * cannot work without a volume service; `openstack server volume list` asks Nova only.
 */
const run = promisify(execFile);
const novaBin = '/usr/bin/nova';
const openstackBin = '/usr/bin/openstack';
const present = existsSync(novaBin) && existsSync(openstackBin);
if (!present) {
  const reason = `${novaBin} or ${openstackBin} is missing; install python3-novaclient and python3-openstackclient (scripts/install-system.sh)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`skipping the nova CLI volume attachment test: ${reason}`);
}

/** A list table as objects keyed by its header. */
function listTable(out: string): Record<string, string>[] {
  const [header, ...rows] = tableRows(out);
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe.runIf(present)('the real nova and openstack CLIs on os-volume_attachments', () => {
  let h: ApiServerHarness;
  let tenants: Tenants;
  let volumes: LocalVolumeAdapter;
  let dir: string;
  let base: string;
  let vm: string;

  /** Runs a CLI as a Default-domain user with a clean environment. */
  async function client(
    bin: string,
    args: readonly string[],
    as: { user: string; password: string; project: string },
  ): Promise<CliResult> {
    const env = {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      LANG: 'C.UTF-8',
      OS_AUTH_URL: `${base}/v3`,
      OS_IDENTITY_API_VERSION: '3',
      OS_USERNAME: as.user,
      OS_PASSWORD: as.password,
      OS_PROJECT_NAME: as.project,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
    try {
      const { stdout, stderr } = await run(bin, [...args], { env, timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof err.code === 'number' ? err.code : 1,
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
      };
    }
  }
  const alice = { user: 'alice', password: 'alice-Pw-0wasp', project: 'owasp-a' };
  const nova = (args: readonly string[], as = alice) => client(novaBin, args, as);
  const ok = (r: CliResult, what: string) => {
    expect(r.code, `${what}\n${r.stderr}\n${r.stdout}`).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nlfs-volcli-'));
    volumes = new LocalVolumeAdapter(join(dir, 'volumes'));
    for (const id of ['cli-data', 'cli-logs']) await volumes.create({ id, sizeMiB: 1 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    h = await apiServerHarness({ publicUrl: base, cloud: { hosts: 1, core: { volumes } } });
    await h.server.listen('127.0.0.1', port);
    tenants = await seedTenants(h);
    const r = await h.call(tenants.a.member, {
      method: 'POST',
      url: '/v2.1/servers',
      payload: { server: { name: 'cli-vm', imageRef: 'cirros', flavorRef: 'm1.small' } },
    });
    expect(r.statusCode, r.body).toBe(202);
    vm = r.json().server.id;
    await waitForServerStatus(h, tenants.admin, vm, 'ACTIVE');
  });
  afterAll(async () => {
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('nova volume-attach prints the attachment with the device asked, and the engine has it', async () => {
    const out = ok(await nova(['volume-attach', vm, 'cli-data', '/dev/vdc']), 'nova volume-attach');
    // nova negotiates the API's newest microversion (2.73), so the table has the 2.70 tag
    expect(propertyTable(out)).toEqual({
      device: '/dev/vdc',
      id: 'cli-data',
      serverId: vm,
      tag: '-',
      volumeId: 'cli-data',
    });
    const instance = await h.cloud.compute.get(vm);
    expect(instance.volumes?.map((v) => [v.volumeId, v.device])).toEqual([['cli-data', 'vdc']]);
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({ 'cli-data': 'vdc' });
    expect((await volumes.get('cli-data')).attachedTo).toBe(vm);
  });

  it('nova volume-attach without a device (and with `auto`) prints the device the API picked', async () => {
    const out = ok(await nova(['volume-attach', 'cli-vm', 'cli-logs', 'auto']), 'nova volume-attach auto');
    expect(propertyTable(out)).toMatchObject({ device: '/dev/vdb', volumeId: 'cli-logs', serverId: vm });
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({ 'cli-data': 'vdc', 'cli-logs': 'vdb' });
  });

  it('nova volume-attachments and openstack server volume list show both, at 2.73 and at 2.1', async () => {
    const listed = listTable(ok(await nova(['volume-attachments', vm]), 'nova volume-attachments'));
    expect(listed).toEqual([
      { ID: 'cli-data', DEVICE: '/dev/vdc', 'SERVER ID': vm, 'VOLUME ID': 'cli-data', TAG: '-' },
      { ID: 'cli-logs', DEVICE: '/dev/vdb', 'SERVER ID': vm, 'VOLUME ID': 'cli-logs', TAG: '-' },
    ]);
    const old = listTable(
      ok(await nova(['--os-compute-api-version', '2.1', 'volume-attachments', vm]), 'at 2.1'),
    );
    expect(old.map((r) => Object.keys(r))).toEqual([
      ['ID', 'DEVICE', 'SERVER ID', 'VOLUME ID'],
      ['ID', 'DEVICE', 'SERVER ID', 'VOLUME ID'],
    ]);
    const osc = JSON.parse(
      ok(await client(openstackBin, ['server', 'volume', 'list', vm, '-f', 'json'], alice), 'openstack'),
    );
    expect(osc).toEqual([
      { ID: 'cli-data', Device: '/dev/vdc', 'Server ID': vm, 'Volume ID': 'cli-data' },
      { ID: 'cli-logs', Device: '/dev/vdb', 'Server ID': vm, 'Volume ID': 'cli-logs' },
    ]);
  });

  it('prints Nova-worded refusals: a volume already attached, an unknown one, another project, a reader', async () => {
    const again = await nova(['volume-attach', vm, 'cli-data']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      `Invalid volume: volume cli-data is already attached to instance ${vm} (HTTP 400)`,
    );
    const unknown = await nova(['volume-attach', vm, 'no-such-volume']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('Volume no-such-volume could not be found. (HTTP 404)');
    const bob = await nova(['volume-attachments', vm], {
      user: 'bob',
      password: 'bob-Pw-0wasp',
      project: 'owasp-b',
    });
    expect(bob.code).toBe(1);
    expect(bob.stderr).toContain(`No server with a name or ID of '${vm}' exists.`);
    const rita = await nova(['volume-attach', vm, 'cli-data'], {
      user: 'rita',
      password: 'rita-Pw-0wasp',
      project: 'owasp-a',
    });
    expect(rita.code).toBe(1);
    expect(rita.stderr).toContain('(HTTP 403)');
    // the administrator sees another project's attachments
    const admin = { user: 'admin', password: harnessAdminPassword, project: 'admin' };
    expect(listTable(ok(await nova(['volume-attachments', vm], admin), 'as admin'))).toHaveLength(2);
  });

  it('nova volume-detach detaches (the engine finishes after the 202) and frees the volume file', async () => {
    ok(await nova(['volume-detach', vm, 'cli-data']), 'nova volume-detach');
    const after = await waitForInstance(h.cloud.compute, vm, (i) =>
      (i.volumes ?? []).every((v) => v.volumeId !== 'cli-data'),
    );
    expect(after.volumes?.map((v) => v.volumeId)).toEqual(['cli-logs']);
    expect(h.cloud.drivers[0]!.guest(vm)?.volumes).toEqual({ 'cli-logs': 'vdb' });
    expect((await volumes.get('cli-data')).attachedTo).toBeUndefined();
    const listed = listTable(ok(await nova(['volume-attachments', vm]), 'nova volume-attachments'));
    expect(listed.map((r) => r['VOLUME ID'])).toEqual(['cli-logs']);
    const twice = await nova(['volume-detach', vm, 'cli-data']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(`Instance ${vm} is not attached to volume cli-data (HTTP 404)`);
    ok(await nova(['volume-detach', vm, 'cli-logs']), 'nova volume-detach cli-logs');
    await waitForInstance(h.cloud.compute, vm, (i) => (i.volumes ?? []).length === 0);
    expect((await volumes.get('cli-logs')).attachedTo).toBeUndefined();
  });
});
