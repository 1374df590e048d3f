import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCompute, LocalImageService } from '@nova-lfs/core';
import { buildDomainXml, createOverlay, KvmDriver } from '@nova-lfs/driver-kvm';
import { BOOT_MARKER, findGuestKernel, importGuestImages } from '@nova-lfs/driver-kvm/testing';
import { percentile, printReport } from '../report.js';

const run = promisify(execFile);

/**
 * `pnpm bench kvm [--rounds N]`: boot-to-marker time of a QEMU (TCG) guest through the engine
 * against `virsh create` of the same domain XML, alternating, in the same run. The guest is
 * Debian's cloud kernel + a busybox initramfs that prints a marker on the serial console, with a
 * qcow2 overlay disk. Needs libvirtd (scripts/services/start-libvirt.sh).
 */
export default async function kvmBench(args: string[]): Promise<boolean> {
  const i = args.indexOf('--rounds');
  const rounds = i >= 0 ? Number(args[i + 1]) : 8;
  const kernel = await findGuestKernel();
  if (!kernel) throw new Error('no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)');
  mkdirSync('/var/lib/nova-lfs/test', { recursive: true });
  const root = mkdtempSync('/var/lib/nova-lfs/test/bench-kvm-');
  try {
    const images = new LocalImageService(join(root, 'images'));
    await importGuestImages(images, root, kernel);
    const driver = new KvmDriver({ hostId: 'bench-kvm', stateDir: join(root, 'state') });
    const compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'vm', vcpus: 1, ramMb: 192 }],
      hosts: [{ id: 'bench-kvm', driver }],
      engine: { powerOffTimeoutMs: 500 },
    });
    const { stdout: virshVersion } = await run('virsh', ['-c', 'qemu:///system', 'version']);
    const waitMarker = async (file: string, t0: number): Promise<number> => {
      const end = t0 + 60_000;
      while (performance.now() < end) {
        if (existsSync(file) && readFileSync(file, 'utf8').includes(BOOT_MARKER))
          return performance.now() - t0;
        await new Promise((res) => setTimeout(res, 10));
      }
      throw new Error(`no marker in ${file}`);
    };
    const engineMs: number[] = [];
    const virshMs: number[] = [];
    const paths = async () => ({
      kernel: (await images.acquire('kernel')).path,
      initrd: (await images.acquire('initrd')).path,
      base: (await images.acquire('guest')).path,
    });
    for (let round = 0; round < rounds; round++) {
      // engine
      let t0 = performance.now();
      const [vm] = await compute.create({
        name: 'bench',
        projectId: 'bench',
        userId: 'bench',
        flavorId: 'vm',
        imageId: 'guest',
      });
      if (vm!.vmState !== 'active') throw new Error(`engine boot failed: ${vm!.fault?.message}`);
      engineMs.push(await waitMarker(join(driver.instanceDir(vm!.id), 'console.log'), t0));
      await compute.delete(vm!.id);
      // virsh create of the same XML shape
      const uuid = randomUUID();
      const dir = join(root, 'virsh', uuid);
      mkdirSync(dir, { recursive: true });
      const p = await paths();
      t0 = performance.now();
      await createOverlay(p.base, 'qcow2', join(dir, 'disk.qcow2'));
      const xml = buildDomainXml({
        name: `nova-${uuid}`,
        uuid,
        virtType: 'qemu',
        memoryMiB: 192,
        vcpus: 1,
        arch: 'x86_64',
        machine: 'pc',
        kernel: p.kernel,
        initrd: p.initrd,
        cmdline: 'console=ttyS0 quiet',
        disks: [{ path: join(dir, 'disk.qcow2'), format: 'qcow2', target: 'vda' }],
        serialLogPath: join(dir, 'console.log'),
        metadata: {
          instanceId: uuid,
          projectId: 'bench',
          hostId: 'bench-virsh',
          displayName: 'bench',
          flavorId: 'vm',
          imageId: 'guest',
        },
      });
      writeFileSync(join(dir, 'domain.xml'), xml);
      await run('virsh', ['-c', 'qemu:///system', 'create', join(dir, 'domain.xml')]);
      virshMs.push(await waitMarker(join(dir, 'console.log'), t0));
      await run('virsh', ['-c', 'qemu:///system', 'destroy', `nova-${uuid}`]);
    }
    await compute.close();
    engineMs.sort((a, b) => a - b);
    virshMs.sort((a, b) => a - b);
    const ratio = percentile(engineMs, 50) / percentile(virshMs, 50);
    return printReport(
      'kvm',
      {
        libvirt:
          virshVersion
            .split('\n')
            .find((l) => l.includes('library'))
            ?.trim() ?? '',
        hypervisor:
          virshVersion
            .split('\n')
            .find((l) => l.includes('hypervisor'))
            ?.trim() ?? '',
        virtType: 'qemu (TCG software emulation; nested KVM hangs guests here)',
        kernel,
        guest: 'busybox initramfs printing a marker on ttyS0, 1 vCPU, 192 MiB, qcow2 overlay disk',
        rounds,
        measure:
          'median time from request to marker in the serial log: engine create vs qemu-img overlay + virsh create',
      },
      {
        engineBootToMarkerMedian: { value: Math.round(percentile(engineMs, 50)), unit: 'ms' },
        virshBootToMarkerMedian: { value: Math.round(percentile(virshMs, 50)), unit: 'ms' },
        engineBootToMarkerMax: { value: Math.round(engineMs.at(-1) ?? 0), unit: 'ms' },
        virshBootToMarkerMax: { value: Math.round(virshMs.at(-1) ?? 0), unit: 'ms' },
        ratio: { value: Math.round(ratio * 1000) / 1000, unit: 'x', target: { op: '<=', value: 1.1 } },
      },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
