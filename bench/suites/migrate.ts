import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCompute, type Instance, LocalImageService } from '@nova-lfs/core';
import { KvmDriver, retargetDomainXml } from '@nova-lfs/driver-kvm';
import { findGuestKernel, importGuestImages } from '@nova-lfs/driver-kvm/testing';
import { percentile, printReport } from '../report.js';

const run = promisify(execFile);

const firstUri = 'qemu:///system';
const secondUri = `qemu+unix:///system?socket=${process.env.NOVA_LFS_LIBVIRT2_DIR ?? '/var/lib/nova-lfs/libvirt-second'}/sock/libvirt-sock`;

/**
 * `pnpm bench migrate [--rounds N]`: live migration of an idle 256 MiB QEMU (TCG) guest between
 * the two libvirt hosts of this machine (scripts/services/start-libvirt.sh and
 * start-libvirt-second.sh), in the same run and both directions each round:
 * - through the engine (`compute.liveMigrate(id, { host })`: placement and claims on the
 *   destination, the drivers' prepare and check, the move, the record moved, the source's claim
 *   released);
 * - through the KVM driver's LiveMigratable port alone (prepare on the destination, check and
 *   liveMigrate on the source);
 * - against `virsh migrate` of the same domain with the same flags and parameters (live, persist on
 *   the destination, undefine the source, abort on error, `--migrateuri tcp://127.0.0.1
 *   --listen-address 127.0.0.1`, the same destination XML; managed direct like the driver).
 * Downtime from libvirt's completed-job statistics (the destination's `domjobinfo --completed` for
 * virsh; the driver's result, stored on the engine's migration record).
 */
export default async function migrateBench(args: string[]): Promise<boolean> {
  const i = args.indexOf('--rounds');
  const rounds = i >= 0 ? Number(args[i + 1]) : 4;
  const kernel = await findGuestKernel();
  if (!kernel) throw new Error('no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)');
  mkdirSync('/var/lib/nova-lfs/test', { recursive: true });
  const root = mkdtempSync('/var/lib/nova-lfs/test/bench-migrate-');
  const a = new KvmDriver({ uri: firstUri, hostId: 'bench-mig-a', stateDir: join(root, 'state') });
  const b = new KvmDriver({ uri: secondUri, hostId: 'bench-mig-b', stateDir: join(root, 'state') });
  let instance: Instance | undefined;
  const images = new LocalImageService(join(root, 'images'));
  await importGuestImages(images, root, kernel);
  const compute = await createCompute({
    storage: 'memory',
    images,
    flavors: [{ id: 'mig', vcpus: 1, ramMb: 256 }],
    hosts: [
      { id: 'bench-mig-a', driver: a },
      { id: 'bench-mig-b', driver: b },
    ],
  });
  try {
    const [vm] = await compute.create({
      name: 'bench-migrate',
      projectId: 'bench',
      userId: 'bench',
      flavorId: 'mig',
      imageId: 'initrd-boot',
    });
    if (vm?.vmState !== 'active') throw new Error(`the guest did not boot: ${vm?.fault?.message}`);
    instance = vm;
    const hosts = { 'bench-mig-a': a, 'bench-mig-b': b } as Record<string, KvmDriver>;
    const uris = { 'bench-mig-a': firstUri, 'bench-mig-b': secondUri } as Record<string, string>;
    const here = async () => (await compute.get(vm.id)).hostId ?? '';
    const other = (h: string) => (h === 'bench-mig-a' ? 'bench-mig-b' : 'bench-mig-a');
    // Let the guest finish booting (its pages settle) before the first round.
    await new Promise((r) => setTimeout(r, 5_000));
    const name = KvmDriver.domainName(vm.id);

    const engineMs: number[] = [];
    const engineDowntime: number[] = [];
    const seen = new Set<string>();
    const engineLeg = async () => {
      const to = other(await here());
      const t0 = performance.now();
      await compute.liveMigrate(vm.id, { host: to, allowPostCopy: false });
      engineMs.push(performance.now() - t0);
      if ((await here()) !== to) throw new Error('the engine did not move the guest');
      for (const m of await compute.migrations.list({ instanceId: vm.id })) {
        if (seen.has(m.id) || m.status !== 'completed') continue;
        seen.add(m.id);
        if (m.progress?.downtimeMs !== undefined) engineDowntime.push(m.progress.downtimeMs);
      }
    };
    const driverMs: number[] = [];
    const driverDowntime: number[] = [];
    const virshMs: number[] = [];
    const virshDowntime: number[] = [];
    // The driver and virsh legs move the guest behind the engine's back and back again before
    // the next engine leg: the engine's record stays right.
    const driverLeg = async (from: KvmDriver, to: KvmDriver) => {
      const t0 = performance.now();
      const target = await to.prepareLiveMigrationTarget(vm);
      await from.checkLiveMigration(vm, target);
      const r = await from.liveMigrate(vm, target, { allowPostCopy: false });
      driverMs.push(performance.now() - t0);
      if (r.downtimeMs !== undefined) driverDowntime.push(r.downtimeMs);
    };
    const virshLeg = async (fromUri: string, toUri: string, from: KvmDriver, to: KvmDriver) => {
      // The same destination XML the driver sends (its host id and instance directory), written
      // before the clock starts.
      const fromDir = from.instanceDir(vm.id);
      const toDir = to.instanceDir(vm.id);
      mkdirSync(toDir, { recursive: true });
      const xml = async (inactive: boolean) =>
        retargetDomainXml(
          (
            await run('virsh', [
              '-c',
              fromUri,
              'dumpxml',
              '--migratable',
              '--security-info',
              ...(inactive ? ['--inactive'] : []),
              name,
            ])
          ).stdout,
          { hostId: to.hostId, fromDir, toDir },
        );
      writeFileSync(join(root, 'dest.xml'), await xml(false));
      writeFileSync(join(root, 'persist.xml'), await xml(true));
      const t0 = performance.now();
      await run('virsh', [
        '-c',
        fromUri,
        'migrate',
        '--live',
        '--persistent',
        '--undefinesource',
        '--abort-on-error',
        name,
        toUri,
        '--migrateuri',
        'tcp://127.0.0.1',
        '--listen-address',
        '127.0.0.1',
        '--xml',
        join(root, 'dest.xml'),
        '--persistent-xml',
        join(root, 'persist.xml'),
      ]);
      virshMs.push(performance.now() - t0);
      const { stdout } = await run('virsh', ['-c', toUri, 'domjobinfo', '--completed', name]);
      const m = /Total downtime:\s+(\d+)\s*ms/.exec(stdout);
      if (m) virshDowntime.push(Number(m[1]));
      rmSync(fromDir, { recursive: true, force: true });
    };
    for (let round = 0; round < rounds; round++) {
      await engineLeg();
      await engineLeg();
      const h = await here();
      const [x, y] = [hosts[h]!, hosts[other(h)]!];
      await driverLeg(x, y);
      await driverLeg(y, x);
      await virshLeg(uris[h]!, uris[other(h)]!, x, y);
      await virshLeg(uris[other(h)]!, uris[h]!, y, x);
    }
    if ((await hosts[await here()]!.getPowerState(vm)) !== 'running')
      throw new Error('the guest does not run where the engine has it');
    const { stdout: virshVersion } = await run('virsh', ['-c', firstUri, 'version']);
    for (const xs of [engineMs, driverMs, virshMs, engineDowntime, driverDowntime, virshDowntime])
      xs.sort((x, y) => x - y);
    const ratio = percentile(engineMs, 50) / percentile(virshMs, 50);
    const driverRatio = percentile(driverMs, 50) / percentile(virshMs, 50);
    const downtimes = [...engineDowntime, ...driverDowntime].sort((x, y) => x - y);
    const line = (s: string, k: string) =>
      s
        .split('\n')
        .find((l) => l.includes(k))
        ?.trim() ?? '';
    return printReport(
      'migrate',
      {
        libvirt: line(virshVersion, 'library'),
        hypervisor: line(virshVersion, 'hypervisor'),
        hosts: `two root libvirtds on this machine (${firstUri}; ${secondUri}, its own mount namespace and host UUID)`,
        virtType: 'qemu (TCG software emulation; nested KVM hangs guests here)',
        guest: 'idle busybox initramfs, direct kernel boot, 1 vCPU, 256 MiB, no disk',
        through:
          "the engine (compute.liveMigrate with the destination named) and the KVM driver's LiveMigratable port (prepare + check + liveMigrate)",
        baseline:
          'virsh migrate, same flags, migrate_uri/listen_address and destination XML (managed direct, like the driver)',
        rounds: `${rounds} (each: engine there and back, driver there and back, virsh there and back)`,
        postCopy: 'off (allowPostCopy: false, no --postcopy)',
        stream: 'tcp://127.0.0.1, port picked from the destination libvirtd range; bandwidth unlimited',
      },
      {
        engineMigrationMedian: { value: Math.round(percentile(engineMs, 50)), unit: 'ms' },
        driverMigrationMedian: { value: Math.round(percentile(driverMs, 50)), unit: 'ms' },
        virshMigrationMedian: { value: Math.round(percentile(virshMs, 50)), unit: 'ms' },
        engineMigrationMax: { value: Math.round(engineMs.at(-1) ?? 0), unit: 'ms' },
        driverMigrationMax: { value: Math.round(driverMs.at(-1) ?? 0), unit: 'ms' },
        virshMigrationMax: { value: Math.round(virshMs.at(-1) ?? 0), unit: 'ms' },
        driverTimeRatio: { value: Math.round(driverRatio * 1000) / 1000, unit: 'x' },
        migrationTimeRatio: {
          value: Math.round(ratio * 1000) / 1000,
          unit: 'x',
          target: { op: '<=', value: 1.1 },
        },
        downtimeMs: { value: percentile(downtimes, 50), unit: 'ms', target: { op: '<=', value: 300 } },
        downtimeMaxMs: { value: downtimes.at(-1) ?? Number.NaN, unit: 'ms' },
        engineDowntimeMedianMs: { value: percentile(engineDowntime, 50), unit: 'ms' },
        driverDowntimeMedianMs: { value: percentile(driverDowntime, 50), unit: 'ms' },
        virshDowntimeMedianMs: { value: percentile(virshDowntime, 50), unit: 'ms' },
      },
    );
  } finally {
    if (instance) await compute.delete(instance.id).catch(() => undefined);
    await compute.close();
    rmSync(root, { recursive: true, force: true });
  }
}
