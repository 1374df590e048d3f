import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Kernel modules the probe guest loads, in order (virtio PCI, block and net are modules in Debian's cloud kernel). */
const MODULES = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'drivers/block/virtio_blk.ko',
  'net/core/failover.ko',
  'drivers/net/net_failover.ko',
  'drivers/net/virtio_net.ko',
];

/** Prefixes of the lines the probe guest prints on its serial console. */
export const PROBE = {
  /** `NLFS-PROBE-UP <marker>` once booted (`nlfs.marker=` on the kernel command line, default `probe`). */
  up: 'NLFS-PROBE-UP',
  /** `NLFS-PROBE-CPU nproc=<n> memkb=<MemTotal kB>` once booted. */
  cpu: 'NLFS-PROBE-CPU',
  /** `NLFS-PROBE-BLOCK [vda vdb ]` whenever the set of virtio disks changes. */
  block: 'NLFS-PROBE-BLOCK',
  /** `NLFS-PROBE-DISK <dev> <tag>`: the tag found at the start of a disk when it appears. */
  disk: 'NLFS-PROBE-DISK',
  /** `NLFS-PROBE-NET [<mac> <mac> ]`: the MAC addresses of the guest's NICs (not `lo`), at boot and whenever they change. */
  net: 'NLFS-PROBE-NET',
  /** `NLFS-PROBE-TAGGED <tag>`: with `nlfs.tag=1`, the tag written to an untagged vda at boot. */
  tagged: 'NLFS-PROBE-TAGGED',
} as const;

/**
 * Builds a busybox initramfs for `kernelPath` (Debian's cloud kernel) whose `/init` loads the
 * virtio block and net modules of that kernel, prints what it sees on the serial console (see
 * {@link PROBE}): its CPUs and memory, the virtio disks and the NICs' MAC addresses whenever those
 * sets change (hot-plug), and
 * the tag at the start of each disk as it appears. With `nlfs.tag=1` on the kernel command line it
 * first writes a random tag to `vda` if it has none, so a later boot (e.g. a rescue, where the
 * disk is `vdb`) can show the disk's content survived.
 */
export async function makeProbeInitramfs(
  outPath: string,
  kernelPath: string,
  busybox = '/bin/busybox',
): Promise<void> {
  const version = basename(kernelPath).replace(/^vmlinuz-/, '');
  const work = await mkdtemp(join(tmpdir(), 'nlfs-probe-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'lib/modules'])
      await mkdir(join(root, d), { recursive: true });
    await copyFile(busybox, join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    const applets = [
      'sh',
      'mount',
      'echo',
      'sleep',
      'poweroff',
      'insmod',
      'ls',
      'cat',
      'dd',
      'tr',
      'head',
      'nproc',
      'sed',
      'grep',
    ];
    for (const a of applets) await symlink('busybox', join(root, 'bin', a));
    const names: string[] = [];
    for (const m of MODULES) {
      const name = basename(m);
      await copyFile(join('/lib/modules', version, 'kernel', m), join(root, 'lib/modules', name));
      names.push(name);
    }
    const script = [
      '#!/bin/sh',
      'mount -t proc proc /proc',
      'mount -t sysfs sys /sys',
      'mount -t devtmpfs dev /dev 2>/dev/null',
      `for m in ${names.join(' ')}; do insmod /lib/modules/$m 2>/dev/null; done`,
      'out() { echo "$*" > /dev/ttyS0; }',
      'marker=$(sed -n "s/.*nlfs.marker=\\([A-Za-z0-9_-]*\\).*/\\1/p" /proc/cmdline)',
      `out ${PROBE.up} \${marker:-probe}`,
      `out ${PROBE.cpu} nproc=$(nproc) memkb=$(sed -n "s/^MemTotal: *\\([0-9]*\\) kB/\\1/p" /proc/meminfo)`,
      'tag_of() { dd if=/dev/$1 bs=64 count=1 2>/dev/null | tr -dc "A-Za-z0-9-" | head -c 60; }',
      'if grep -q "nlfs.tag=1" /proc/cmdline && [ -e /dev/vda ]; then',
      '  case "$(tag_of vda)" in NLFSTAG-*) ;; *)',
      '    t="NLFSTAG-$(cat /proc/sys/kernel/random/uuid)"',
      '    echo "$t" | dd of=/dev/vda conv=fsync 2>/dev/null',
      `    out ${PROBE.tagged} "$t" ;;`,
      '  esac',
      'fi',
      "trap 'poweroff -f' TERM USR2",
      'last=""',
      'lastn="-"',
      'while true; do',
      '  nets=""',
      '  for n in $(ls /sys/class/net); do [ "$n" = lo ] || nets="$nets$(cat /sys/class/net/$n/address) "; done',
      `  if [ "$nets" != "$lastn" ]; then out ${PROBE.net} "[$nets]"; lastn="$nets"; fi`,
      '  cur=""',
      '  for d in $(ls /sys/block); do case "$d" in vd*) cur="$cur$d ";; esac; done',
      '  if [ "$cur" != "$last" ]; then',
      `    out ${PROBE.block} "[$cur]"`,
      '    for d in $cur; do case " $last" in *" $d "*) ;; *) out ' +
        PROBE.disk +
        ' "$d" "$(tag_of $d)";; esac; done',
      '    last="$cur"',
      '  fi',
      '  sleep 0.2',
      'done',
      '',
    ];
    await writeFile(join(root, 'init'), script.join('\n'), { mode: 0o755 });
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
