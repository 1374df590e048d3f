#!/usr/bin/env bash
# make-busybox-rootfs.sh OUT.tar
# A tiny root filesystem from Debian's busybox-static, as a tar suitable for the Docker Engine
# API's image import (`docker import`). Reproducible: fixed mtimes, sorted entries, owner 0:0.
set -euo pipefail
out="${1:?usage: make-busybox-rootfs.sh OUT.tar}"
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-rootfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,tmp,proc,sys,dev,root,var/log}
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
  case "$applet" in busybox) continue ;; esac
  ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
  -C "$root" -cf "$out" .
