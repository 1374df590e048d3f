import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What the test guest prints on its serial console once booted. */
export const GUEST_MARKER = 'NOVA-LFS-LIBVIRT-GUEST-UP';

/** Debian's cloud kernel (`linux-image-cloud-amd64`), or undefined. */
export async function findGuestKernel(): Promise<string | undefined> {
  const files = (await readdir('/boot').catch(() => [] as string[])).filter((f) =>
    /^vmlinuz-.*-cloud-amd64$/.test(f),
  );
  files.sort();
  const last = files.at(-1);
  return last ? join('/boot', last) : undefined;
}

/** A folder QEMU (running as root here, see scripts/services/start-libvirt.sh) can read. */
export async function guestDir(): Promise<string> {
  await mkdir('/var/lib/nova-lfs/test', { recursive: true, mode: 0o755 });
  return mkdtemp('/var/lib/nova-lfs/test/libvirt-');
}

/**
 * A busybox initramfs whose `/init` prints {@link GUEST_MARKER} on ttyS0 and idles (the same
 * kind of guest driver-kvm's tests boot).
 */
export async function makeInitramfs(dir: string, busybox = '/bin/busybox'): Promise<string> {
  const root = join(dir, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev']) await mkdir(join(root, d), { recursive: true });
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'mount', 'echo', 'sleep', 'poweroff'])
    await symlink('busybox', join(root, 'bin', a));
  await writeFile(
    join(root, 'init'),
    [
      '#!/bin/sh',
      'mount -t proc proc /proc',
      'mount -t sysfs sys /sys',
      'mount -t devtmpfs dev /dev 2>/dev/null',
      `echo ${GUEST_MARKER} > /dev/ttyS0 2>/dev/null || echo ${GUEST_MARKER}`,
      'while true; do sleep 1; done',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const out = join(dir, 'initrd.gz');
  await run('sh', [
    '-c',
    'cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --quiet | gzip -n -6 > "$2"',
    'sh',
    root,
    out,
  ]);
  await rm(root, { recursive: true, force: true });
  return out;
}

/** A tiny TCG guest: direct kernel boot of `kernel` + `initrd`, serial console to `serialLog`. */
export function guestXml(o: { name: string; kernel: string; initrd: string; serialLog: string }): string {
  return `<domain type='qemu'>
  <name>${o.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>${o.kernel}</kernel><initrd>${o.initrd}</initrd><cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <features><acpi/></features>
  <on_reboot>destroy</on_reboot>
  <devices>
    <serial type='file'><source path='${o.serialLog}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
}

/** A raw disk device for attach/detach tests. */
export function diskXml(path: string, dev = 'vdb'): string {
  return `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${path}'/><target dev='${dev}' bus='virtio'/></disk>`;
}
