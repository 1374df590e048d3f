import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ImageService } from '@nova-lfs/core';
import { Connection, isLibvirtError } from '@nova-lfs/libvirt';

const run = promisify(execFile);

// Two libvirt hosts on this machine for move tests: the first libvirtd and the second one that
// scripts/services/start-libvirt-second.sh runs in its own mount namespace, and a guest that
// counts on its serial console.

/** The second libvirt host of scripts/services/start-libvirt-second.sh. */
export const secondUri = `qemu+unix:///system?socket=${process.env.NOVA_LFS_LIBVIRT2_DIR ?? '/var/lib/nova-lfs/libvirt-second'}/sock/libvirt-sock`;
export const firstUri = 'qemu:///system';

/**
 * Why libvirt does not answer on `uri` (with the script that starts it), or undefined when it
 * answers.
 */
export async function libvirtMissing(uri: string, start: string): Promise<string | undefined> {
  try {
    const c = await Connection.open(uri);
    await c.close();
    return undefined;
  } catch (e) {
    const why = isLibvirtError(e) ? `${e.details.codeName}: ${e.details.message}` : String(e);
    return `libvirt does not answer on ${uri} (${why}); start it with: bash ${start}`;
  }
}

/** Why the two hosts cannot be used (a daemon not answering), or undefined when both answer. */
export async function twoHostsMissing(): Promise<string | undefined> {
  return (
    (await libvirtMissing(firstUri, 'scripts/services/start-libvirt.sh')) ??
    (await libvirtMissing(secondUri, 'scripts/services/start-libvirt-second.sh'))
  );
}

/** What the counter guest prints on ttyS0, every 200 ms: `COUNT <n>`. */
export const COUNT_RE = /COUNT (\d+)/g;

/** The counters printed in `text`, in order. */
export function counts(text: string): number[] {
  return [...text.matchAll(COUNT_RE)].map((m) => Number(m[1]));
}

/**
 * A busybox initramfs whose `/init` prints `COUNT n` (n = 0, 1, 2, ...) on ttyS0 every 200 ms.
 * With `dirtyMiB`, it first fills a file of that many MiB with random bytes and then copies it
 * over and over, dirtying guest memory as fast as the vCPU can (a guest whose pre-copy does not
 * converge over a throttled link).
 */
export async function makeCounterInitramfs(outPath: string, o: { dirtyMiB?: number } = {}): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'nlfs-mig-initramfs-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, d), { recursive: true });
    await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    for (const a of ['sh', 'mount', 'echo', 'sleep', 'dd', 'cp', 'poweroff'])
      await symlink('busybox', join(root, 'bin', a));
    const dirty = o.dirtyMiB
      ? [
          `dd if=/dev/urandom of=/tmp/a bs=1M count=${o.dirtyMiB} 2>/dev/null`,
          'echo DIRTY-STARTED > /dev/ttyS0',
          '(while true; do cp /tmp/a /tmp/b; done) &',
        ]
      : [];
    await writeFile(
      join(root, 'init'),
      [
        '#!/bin/sh',
        'mount -t proc proc /proc',
        'mount -t sysfs sys /sys',
        'mount -t devtmpfs dev /dev 2>/dev/null',
        'mount -t tmpfs tmp /tmp',
        ...dirty,
        'i=0',
        'while true; do echo "COUNT $i" > /dev/ttyS0; i=$((i+1)); sleep 0.2; done',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    await run('sh', [
      '-c',
      'cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --quiet | gzip -n -6 > "$2"',
      'sh',
      root,
      outPath,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Makes the counting guest (see {@link makeCounterInitramfs}) in `dir` and imports it into
 * `images` as image `counter` (an initramfs booting image `kernel`, imported from `kernelPath`).
 */
export async function importCounterImages(
  images: ImageService,
  dir: string,
  kernelPath: string,
): Promise<void> {
  await makeCounterInitramfs(join(dir, 'counter.gz'));
  await images.import(
    { id: 'kernel', name: 'kernel', diskFormat: 'raw' },
    { kind: 'file', path: kernelPath },
  );
  await images.import(
    {
      id: 'counter',
      name: 'counter',
      diskFormat: 'initramfs',
      properties: { kernelImageId: 'kernel', kernelCmdline: 'console=ttyS0 quiet' },
    },
    { kind: 'file', path: join(dir, 'counter.gz') },
  );
}
