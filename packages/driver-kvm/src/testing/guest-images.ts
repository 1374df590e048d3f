import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Image, ImageService } from '@nova-lfs/core';

const run = promisify(execFile);

/** The marker the test initramfs prints on the serial console at every boot. */
export const BOOT_MARKER = 'NOVA-LFS-BOOT-MARKER';

/** Path of Debian's cloud kernel (`linux-image-cloud-amd64`), or undefined when absent. */
export async function findGuestKernel(): Promise<string | undefined> {
  const files = (await readdir('/boot').catch(() => [] as string[])).filter((f) =>
    /^vmlinuz-.*-cloud-amd64$/.test(f),
  );
  files.sort();
  const last = files.at(-1);
  return last ? join('/boot', last) : undefined;
}

/**
 * Builds a tiny initramfs from Debian's busybox-static whose `/init` mounts /proc, /sys and /dev,
 * prints `marker` on the serial console and idles; SIGTERM/SIGUSR2 power it off.
 */
export async function makeInitramfs(
  outPath: string,
  marker = BOOT_MARKER,
  busybox = '/bin/busybox',
): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'nlfs-initramfs-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, d), { recursive: true });
    await copyFile(busybox, join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    for (const a of ['sh', 'mount', 'echo', 'sleep', 'poweroff'])
      await symlink('busybox', join(root, 'bin', a));
    const safeMarker = marker.replace(/[^A-Za-z0-9_.-]/g, '');
    await writeFile(
      join(root, 'init'),
      [
        '#!/bin/sh',
        'mount -t proc proc /proc',
        'mount -t sysfs sys /sys',
        'mount -t devtmpfs dev /dev 2>/dev/null',
        `echo ${safeMarker} > /dev/ttyS0 2>/dev/null || echo ${safeMarker}`,
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

/** Creates an empty qcow2 image of `sizeMiB` (a base disk for overlay tests). */
export async function makeBlankQcow2(outPath: string, sizeMiB = 64): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', outPath, `${sizeMiB}M`]);
}

/**
 * Builds and imports the test guest: `kernel` (the given kernel), `initrd` (busybox initramfs
 * printing {@link BOOT_MARKER}), `guest` (a blank qcow2 base disk whose properties point at both,
 * so a boot uses an overlay disk and direct kernel boot) and `initrd-boot` (initramfs only).
 * Work files go to `workDir`.
 */
export async function importGuestImages(
  images: ImageService,
  workDir: string,
  kernelPath: string,
): Promise<{ guest: Image; initrdOnly: Image }> {
  await makeInitramfs(join(workDir, 'initrd.gz'));
  await makeBlankQcow2(join(workDir, 'base.qcow2'), 32);
  await images.import(
    { id: 'kernel', name: 'cloud kernel', diskFormat: 'raw' },
    { kind: 'file', path: kernelPath },
  );
  await images.import(
    { id: 'initrd', name: 'busybox initramfs', diskFormat: 'initramfs' },
    { kind: 'file', path: join(workDir, 'initrd.gz') },
  );
  const guest = await images.import(
    {
      id: 'guest',
      name: 'guest',
      diskFormat: 'qcow2',
      properties: {
        kernelImageId: 'kernel',
        ramdiskImageId: 'initrd',
        kernelCmdline: 'console=ttyS0 quiet',
        hypervisorType: 'qemu',
      },
    },
    { kind: 'file', path: join(workDir, 'base.qcow2') },
  );
  const initrdOnly = await images.import(
    {
      id: 'initrd-boot',
      name: 'initramfs boot',
      diskFormat: 'initramfs',
      properties: { kernelImageId: 'kernel' },
    },
    { kind: 'file', path: join(workDir, 'initrd.gz') },
  );
  return { guest, initrdOnly };
}
