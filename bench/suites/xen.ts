import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCompute, LocalImageService } from '@nova-lfs/core';
import { buildXenDomainXml, ImageStage, XenDriver } from '@nova-lfs/driver-xen';
import {
  findXenGuestKernel,
  importXenGuestImages,
  startNestedXen,
  stopNestedXen,
  XEN_BOOT_MARKER,
} from '@nova-lfs/driver-xen/testing';
import { percentile, printReport } from '../report.js';

const run = promisify(execFile);

/**
 * `pnpm bench xen [--rounds N]`: boot-to-marker time of a Xen PV guest through the engine
 * (`compute.create` -> ACTIVE on one `XenDriver` host, then the marker in xenconsoled's log)
 * against `virsh create` of the same domain XML in the same dom0, alternating (and alternating
 * which goes first), in the same run. Xen 4.17 + dom0 (libvirtd, libxl) run nested under QEMU
 * TCG (scripts/xen/start-dom0.sh; booted here if not running, and stopped again at the end).
 */
export default async function xenBench(args: string[]): Promise<boolean> {
  const i = args.indexOf('--rounds');
  const rounds = i >= 0 ? Number(args[i + 1]) : 6;
  const kernel = await findXenGuestKernel();
  if (!kernel) throw new Error('no generic /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)');
  const xen = await startNestedXen();
  mkdirSync(join(xen.shareDir, 'test'), { recursive: true });
  const root = mkdtempSync(join(xen.shareDir, 'test', 'bench-xen-'));
  try {
    const images = new LocalImageService(join(root, 'image-cache'));
    await importXenGuestImages(images, join(root, 'work'), kernel);
    const stateDir = join(root, 'state');
    const driver = new XenDriver({
      uri: xen.uri,
      hostId: 'bench-xen',
      stateDir,
      consoleLogDir: xen.consoleLogDir,
    });
    const compute = await createCompute({
      storage: 'memory',
      images,
      flavors: [{ id: 'pv', vcpus: 1, ramMb: 128 }],
      hosts: [{ id: 'bench-xen', driver }],
      engine: { powerOffTimeoutMs: 500 },
    });
    const { stdout: virshVersion } = await run('virsh', ['-c', xen.uri, 'version']);
    /** xenconsoled's log has no event: polled every 50 ms, bounded. */
    const waitMarker = async (file: string, t0: number): Promise<number> => {
      const end = t0 + 300_000;
      while (performance.now() < end) {
        if (existsSync(file) && readFileSync(file, 'utf8').includes(XEN_BOOT_MARKER))
          return performance.now() - t0;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`no marker in ${file}`);
    };
    const engineBoot = async (): Promise<number> => {
      const t0 = performance.now();
      const [vm] = await compute.create({
        name: 'bench',
        projectId: 'bench',
        userId: 'bench',
        flavorId: 'pv',
        imageId: 'xen-guest',
      });
      if (vm!.vmState !== 'active') throw new Error(`engine boot failed: ${vm!.fault?.message}`);
      const ms = await waitMarker(driver.consoleLogPath(vm!.id), t0);
      await compute.delete(vm!.id);
      return ms;
    };
    // the same files the driver stages (already there after the first engine boot: hard links by sha256)
    const stage = new ImageStage(join(stateDir, 'images'), join(stateDir, 'images'));
    const virshBoot = async (): Promise<number> => {
      const uuid = randomUUID();
      const name = `nova-${uuid}`;
      const xml = buildXenDomainXml({
        name,
        uuid,
        guestType: 'pv',
        memoryMiB: 128,
        vcpus: 1,
        kernel: await stage.stage(await images.acquire('xen-kernel')),
        initrd: await stage.stage(await images.acquire('xen-guest')),
        cmdline: 'console=hvc0 quiet',
        disks: [],
        metadata: {
          instanceId: uuid,
          projectId: 'bench',
          hostId: 'bench-virsh',
          displayName: 'bench',
          flavorId: 'pv',
          imageId: 'xen-guest',
        },
      });
      const file = join(root, `${uuid}.xml`);
      writeFileSync(file, xml);
      const log = join(xen.consoleLogDir, `guest-${name}.log`);
      const t0 = performance.now();
      await run('virsh', ['-c', xen.uri, 'create', file]);
      const ms = await waitMarker(log, t0);
      await run('virsh', ['-c', xen.uri, 'destroy', name]);
      rmSync(log, { force: true });
      return ms;
    };
    // one unmeasured boot per path first: the first one stages the images, opens the connections
    // and registers the driver's event callback
    await engineBoot();
    await virshBoot();
    const engineMs: number[] = [];
    const virshMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        engineMs.push(await engineBoot());
        virshMs.push(await virshBoot());
      } else {
        virshMs.push(await virshBoot());
        engineMs.push(await engineBoot());
      }
    }
    await compute.close();
    engineMs.sort((a, b) => a - b);
    virshMs.sort((a, b) => a - b);
    const engine = percentile(engineMs, 50);
    const virsh = percentile(virshMs, 50);
    const line = (k: string) =>
      virshVersion
        .split('\n')
        .find((l) => l.includes(k))
        ?.trim() ?? '';
    return printReport(
      'xen',
      {
        libvirt: line('library'),
        hypervisor: line('hypervisor'),
        nesting:
          'Xen 4.17 + dom0 (Debian generic kernel, libvirtd + libxl) under QEMU TCG -cpu Westmere, 2 vCPUs, dom0 768 MiB',
        dom0Start: xen.booted
          ? `booted by this run in ${(xen.startMs / 1000).toFixed(1)} s`
          : 'was already running',
        guest: `Xen PV, ${kernel} + busybox initramfs printing a marker on hvc0, 1 vCPU, 128 MiB`,
        rounds: `${rounds} boots per path after one warm-up boot each, alternating which goes first`,
        measure:
          "median ms from request to marker in xenconsoled's log: engine create (-> ACTIVE) vs virsh create of the same XML",
        loadAverage1m: loadavg()[0]!.toFixed(2),
      },
      {
        engineBootToMarkerMedian: { value: Math.round(engine), unit: 'ms' },
        virshBootToMarkerMedian: { value: Math.round(virsh), unit: 'ms' },
        engineBootToMarkerMax: { value: Math.round(engineMs.at(-1) ?? 0), unit: 'ms' },
        virshBootToMarkerMax: { value: Math.round(virshMs.at(-1) ?? 0), unit: 'ms' },
        dom0StartMs: { value: Math.round(xen.startMs), unit: 'ms' },
        bootRatio: {
          value: Math.round((engine / virsh) * 1000) / 1000,
          unit: 'x',
          target: { op: '<=', value: 1.1 },
        },
      },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
    if (xen.booted) await stopNestedXen();
  }
}
