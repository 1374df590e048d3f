#!/usr/bin/env bash
# make-initramfs.sh OUT.cpio.gz [MARKER]
# A tiny initramfs (busybox-static + /init) for direct kernel boot under QEMU: prints MARKER
# (default NOVA-LFS-BOOT-MARKER) on the serial console, then idles; on ACPI power button
# (acpid may be absent) or SIGTERM/SIGUSR2 it powers off.
set -euo pipefail
out="${1:?usage: make-initramfs.sh OUT.cpio.gz [MARKER]}"
marker="${2:-NOVA-LFS-BOOT-MARKER}"
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-initramfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,etc}
cp "$bb" "$root/bin/busybox"
for applet in sh mount echo sleep cat poweroff reboot halt ls; do ln -s busybox "$root/bin/$applet"; done
cat >"$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "$marker" > /dev/ttyS0 2>/dev/null || echo "$marker"
echo "$marker" > /dev/console 2>/dev/null
trap 'poweroff -f' TERM USR2
while true; do sleep 1; done
INIT
chmod +x "$root/init"
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --reproducible 2>/dev/null || \
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet)) | gzip -n -9 >"$out"
