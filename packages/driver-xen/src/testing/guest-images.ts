import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Image, ImageService } from '@nova-lfs/core';

const run = promisify(execFile);

/** The marker the Xen test initramfs prints on its PV console (`hvc0`) at every boot. */
export const XEN_BOOT_MARKER = 'NOVA-LFS-XEN-BOOT-MARKER';

/**
 * Path of Debian's generic kernel (`linux-image-amd64`: PV guest and dom0 support; the cloud
 * kernel has no dom0 support), or undefined when absent.
 */
export async function findXenGuestKernel(): Promise<string | undefined> {
  const files = (await readdir('/boot').catch(() => [] as string[])).filter(
    (f) => /^vmlinuz-.*-amd64$/.test(f) && !f.includes('-cloud-'),
  );
  files.sort();
  const last = files.at(-1);
  return last ? join('/boot', last) : undefined;
}

/**
 * Builds a tiny initramfs from Debian's busybox-static for a Xen PV guest: `/init` mounts /proc,
 * /sys and /dev, prints `marker` on `hvc0` and idles. Xen's shutdown request makes the guest
 * kernel run `/sbin/poweroff` (busybox: it signals init with SIGUSR2), which init turns into
 * `poweroff -f`; a reboot request restarts the kernel itself.
 */
export async function makeXenGuestInitramfs(outPath: string, marker = XEN_BOOT_MARKER): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'nlfs-xen-initramfs-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp'])
      await mkdir(join(root, d), { recursive: true });
    await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    for (const a of ['sh', 'mount', 'echo', 'sleep', 'poweroff'])
      await symlink('busybox', join(root, 'bin', a));
    await symlink('../bin/busybox', join(root, 'sbin', 'poweroff'));
    const safeMarker = marker.replace(/[^A-Za-z0-9_.-]/g, '');
    await writeFile(
      join(root, 'init'),
      [
        '#!/bin/sh',
        'mount -t proc proc /proc',
        'mount -t sysfs sys /sys',
        'mount -t devtmpfs dev /dev 2>/dev/null',
        `echo ${safeMarker} > /dev/hvc0 2>/dev/null || echo ${safeMarker}`,
        "trap 'poweroff -f' TERM USR2",
        'while true; do sleep 1; done',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    await run('sh', [
      '-c',
      'cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --quiet | gzip -n -9 > "$2"',
      'sh',
      root,
      outPath,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Imports the Xen test guest into `images`: `xen-kernel` (the given kernel) and `xen-guest` (the
 * busybox initramfs printing {@link XEN_BOOT_MARKER}, with `kernelImageId`, `vmMode: xen` and
 * `console=hvc0`). Work files go to `workDir`.
 */
export async function importXenGuestImages(
  images: ImageService,
  workDir: string,
  kernelPath: string,
): Promise<{ guest: Image; kernel: Image }> {
  await mkdir(workDir, { recursive: true });
  await makeXenGuestInitramfs(join(workDir, 'xen-initrd.gz'));
  const kernel = await images.import(
    { id: 'xen-kernel', name: 'generic kernel', diskFormat: 'raw' },
    { kind: 'file', path: kernelPath },
  );
  const guest = await images.import(
    {
      id: 'xen-guest',
      name: 'busybox initramfs (Xen PV)',
      diskFormat: 'initramfs',
      properties: {
        kernelImageId: 'xen-kernel',
        kernelCmdline: 'console=hvc0 quiet',
        vmMode: 'xen',
        hypervisorType: 'xen',
      },
    },
    { kind: 'file', path: join(workDir, 'xen-initrd.gz') },
  );
  return { guest, kernel };
}
