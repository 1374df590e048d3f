import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  findGuestKernel,
  libvirtAvailable,
  makeBlankQcow2,
  makeProbeInitramfs,
  PROBE,
  startLibvirtCommand,
} from '@nova-lfs/driver-kvm/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../testing/serve-process.js';
import { adminEnv, clients, clientsMissing, novaTable as table } from './openstack-clients.test-helper.js';
import { freePort, type ServeProcess, startServe } from './serve-process.test-helper.js';

/**
 * The whole stack on a real hypervisor: the real clients of Debian 12 (`python3-openstackclient`
 * 6.0, `python3-novaclient` 18.1) against `nova-lfs serve --kvm-host ... --network ... --volumes`
 * on the local libvirtd (QEMU TCG). A probe guest (busybox initramfs, see driver-kvm's testing
 * `PROBE`) prints on its serial console the MACs of its NICs and its virtio disks whenever they
 * change, which `openstack console log show` reads back: the NIC of `--nic net-id=`, an
 * interface `nova interface-attach` hot-plugs, a volume `nova volume-attach` hot-plugs, and both
 * going on detach.
 */

const kernel = await findGuestKernel();
const libvirtUp = await libvirtAvailable();
const missing = clientsMissing
  ? clientsMissing
  : !kernel
    ? 'a guest kernel (apt-get install linux-image-cloud-amd64)'
    : !libvirtUp
      ? `libvirtd (${startLibvirtCommand})`
      : undefined;
if (missing) {
  if (process.env.CI === 'true') throw new Error(`CI=true and ${missing} is missing`);
  console.warn(`skipping the openstack CLI scenario on KVM: ${missing}`);
}

const run = promisify(execFile);
const password = 'kvm-scenario-secret';
const host = `kvm-scn-${process.pid}`;

describe.runIf(!missing)('the openstack and nova CLIs against nova-lfs serve on a real KVM host', () => {
  let serve: ServeProcess;
  let dir: string;
  let dataDir: string;
  let env: Record<string, string>;
  const { os, nova, ok, osJson, deleteAllServers } = clients(() => env);
  /** Reads the console through the API until `pattern` appears after `from`; bounded. */
  const waitConsole = async (pattern: RegExp, from = 0): Promise<number> => {
    let text = '';
    for (let i = 0; i < 120; i++) {
      text = ok(await os(['console', 'log', 'show', 'vm']), 'console log show');
      const m = text.slice(from).match(pattern);
      if (m) return from + (m.index ?? 0) + m[0].length;
    }
    throw new Error(`no ${pattern} on the console; it has:\n${text.slice(from).slice(-1500)}`);
  };

  beforeAll(async () => {
    // under /var/lib so that QEMU can read the disks and volume files
    mkdirSync('/var/lib/nova-lfs/test', { recursive: true, mode: 0o755 });
    dir = mkdtempSync('/var/lib/nova-lfs/test/cli-kvm-');
    dataDir = join(dir, 'data');
    serve = await startServe(
      [
        '--data-dir',
        dataDir,
        '--admin-password',
        password,
        '--kvm-host',
        host,
        '--network',
        'private=10.80.0.0/24',
        '--volumes',
        '--log-level',
        'warn',
      ],
      await freePort(),
    );
    env = adminEnv(serve, password);
    const initrd = join(dir, 'probe-initrd.gz');
    await makeProbeInitramfs(initrd, kernel!);
    const disk = join(dir, 'probe.qcow2');
    await makeBlankQcow2(disk, 32);
    const kernelImage = await osJson([
      'image',
      'create',
      '--disk-format',
      'raw',
      '--file',
      kernel!,
      'kernel',
    ]);
    const initrdImage = await osJson(['image', 'create', '--disk-format', 'raw', '--file', initrd, 'initrd']);
    ok(
      await os([
        'image',
        'create',
        '--disk-format',
        'qcow2',
        '--file',
        disk,
        '--property',
        `kernel_id=${kernelImage.id}`,
        '--property',
        `ramdisk_id=${initrdImage.id}`,
        '--property',
        'os_command_line=console=ttyS0 quiet',
        'probe',
      ]),
      'image create probe',
    );
    ok(await os(['flavor', 'create', '--ram', '192', '--vcpus', '1', '--disk', '1', 'kvm.probe']), 'flavor');
  }, 180_000);

  afterAll(async () => {
    if (serve) {
      await deleteAllServers();
      expect(await serve.stop()).toBe(0);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('boots a guest on a network (server create --nic net-id= --wait) whose NIC carries the port the API shows', async () => {
    const created = await osJson([
      'server',
      'create',
      '--image',
      'probe',
      '--flavor',
      'kvm.probe',
      '--nic',
      'net-id=private',
      '--wait',
      'vm',
    ]);
    // as in Nova: the compute service's host, and the hypervisor's node name (libvirt's hostname)
    const [hypervisor] = await osJson(['hypervisor', 'list']);
    expect(created).toMatchObject({
      status: 'ACTIVE',
      'OS-EXT-SRV-ATTR:host': host,
      'OS-EXT-SRV-ATTR:hypervisor_hostname': hypervisor['Hypervisor Hostname'],
    });
    expect(JSON.stringify(created.addresses)).toContain('10.80.0.2');
    const [, first] = table(ok(await nova(['interface-list', 'vm']), 'nova interface-list'));
    const mac = first![4]!;
    expect(mac).toMatch(/^fa:16:3e:/);
    await waitConsole(new RegExp(`${PROBE.net} \\[${mac} \\]`));
  }, 300_000);

  it('hot-plugs an interface (nova interface-attach) and a volume (nova volume-attach) the guest sees, and unplugs both', async () => {
    const [, first] = table(ok(await nova(['interface-list', 'vm']), 'nova interface-list'));
    const bootMac = first![4]!;
    let at = await waitConsole(new RegExp(`${PROBE.net} \\[${bootMac} \\]`));
    const attached = table(
      ok(await nova(['interface-attach', '--net-id', 'private', 'vm']), 'interface-attach'),
    );
    const field = (name: string) => attached.find((r) => r[0] === name)?.[1];
    const hotMac = field('mac_addr')!;
    expect(field('ip_address')).toBe('10.80.0.3');
    at = await waitConsole(new RegExp(`${PROBE.net} \\[${bootMac} ${hotMac} \\]`), at);

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
    expect(JSON.parse(made.stdout)).toMatchObject({ id: 'data-1', sizeMiB: 8 });
    ok(await nova(['volume-attach', 'vm', 'data-1']), 'nova volume-attach');
    at = await waitConsole(new RegExp(`${PROBE.block} \\[vda vdb \\]`), at);
    expect(await osJson(['server', 'volume', 'list', 'vm'])).toEqual([
      expect.objectContaining({ Device: '/dev/vdb', 'Volume ID': 'data-1' }),
    ]);

    ok(await nova(['volume-detach', 'vm', 'data-1']), 'nova volume-detach');
    at = await waitConsole(new RegExp(`${PROBE.block} \\[vda \\]`), at);
    const hotPort = field('port_id')!;
    ok(await nova(['interface-detach', 'vm', hotPort]), 'nova interface-detach');
    await waitConsole(new RegExp(`${PROBE.net} \\[${bootMac} \\]`), at);
    expect(table(ok(await nova(['interface-list', 'vm']), 'nova interface-list')).length).toBe(2);
    ok(await os(['server', 'delete', '--wait', 'vm']), 'server delete');
    expect(ok(await os(['server', 'list', '-f', 'value', '-c', 'ID']), 'server list').trim()).toBe('');
  }, 300_000);
});
