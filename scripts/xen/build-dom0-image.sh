#!/usr/bin/env bash
# build-dom0-image.sh [OUT_DIR]
# Builds what QEMU needs to boot Xen 4.17 with a dom0, from the host's installed Debian packages
# (xen-hypervisor-4.17-amd64, xen-utils-4.17, libvirt-daemon-driver-xen, linux-image-amd64):
#   OUT_DIR/xen          the hypervisor, gunzipped (QEMU's multiboot loader takes an ELF)
#   OUT_DIR/vmlinuz      Debian's generic kernel (the cloud kernel has no dom0 support)
#   OUT_DIR/dom0.cpio    an uncompressed initramfs: busybox, the Xen modules, xenstored,
#                        xenconsoled, xl and libvirtd with the libxl driver, with their libraries
#                        (copied by ldd from the host: same Debian 12 userland). Uncompressed
#                        because unpacking gzip under QEMU TCG costs seconds; QEMU loads it as is.
#   OUT_DIR/stamp        a hash of the inputs: a second run with unchanged inputs does nothing.
# Idempotent; prints OUT_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${NOVA_LFS_XEN_DIR:-/var/lib/nova-lfs/xen}/image}"
xen_gz="$(ls -1 /boot/xen-4.17-amd64.gz 2>/dev/null || true)"
kernel="$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | grep -v cloud | sort -V | tail -1 || true)"
[ -n "$xen_gz" ] || { echo "build-dom0-image: /boot/xen-4.17-amd64.gz missing (apt-get install xen-hypervisor-4.17-amd64)" >&2; exit 1; }
[ -n "$kernel" ] || { echo "build-dom0-image: no generic /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)" >&2; exit 1; }
kver="${kernel#/boot/vmlinuz-}"
xenbin=/usr/lib/xen-4.17/bin
libxl_drv=/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_libxl.so
for f in "$xenbin/xl" "$xenbin/xenstored" "$xenbin/xenconsoled" /usr/sbin/libvirtd "$libxl_drv" /bin/busybox; do
  [ -e "$f" ] || { echo "build-dom0-image: $f missing (see scripts/install-system.sh)" >&2; exit 1; }
done

stamp="$( (sha256sum "$0" "$here/dom0-init.sh" "$xen_gz" "$kernel" "$xenbin/xl" /usr/sbin/libvirtd "$libxl_drv"; echo "$kver") | sha256sum | cut -c1-16)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/dom0.cpio" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,var/log,var/run,var/lib,usr/lib,lib}
chmod 1777 "$root/tmp"

copy() { # copy a file and its parent folders into the root, keeping its absolute path
  local f="$1"
  [ -e "$root$f" ] && return 0
  mkdir -p "$root$(dirname "$f")"
  cp -aL "$f" "$root$f"
}
copy_with_libs() { # a binary or shared object and every library ldd resolves for it
  local f="$1" lib
  copy "$f"
  while read -r lib; do
    [ -n "$lib" ] && copy "$lib"
  done < <(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}')
}

# busybox for the shell and tools (not over files copied later)
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -sf ../bin/busybox "$root/sbin/poweroff"

# kernel modules in load order (modprobe resolves dependencies against the dom0 kernel's tree)
: >"$root/etc/modules.order"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback 9p 9pnet_virtio virtio_pci virtio_net; do
  modprobe -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  copy "$ko"
  echo "$ko" >>"$root/etc/modules.order"
done

# Xen tools and libvirtd with the libxl driver
for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper xenconsole; do copy_with_libs "$xenbin/$b"; done
for b in xenstore-read xenstore-write xenstore-ls xenstore-list; do
  [ -e "/usr/bin/$b" ] && copy_with_libs "/usr/bin/$b"
done
copy_with_libs /usr/sbin/libvirtd
copy_with_libs "$libxl_drv"
for lib in /usr/lib/x86_64-linux-gnu/libvirt-lxc.so.0 /usr/lib/x86_64-linux-gnu/libvirt-qemu.so.0; do
  [ -e "$lib" ] && copy_with_libs "$lib"
done
# libxl dlopens nothing else for PV guests; libvirtd needs its data files and NSS for users
mkdir -p "$root/usr/share"
cp -a /usr/share/libvirt "$root/usr/share/libvirt"
[ -x /usr/sbin/dmidecode ] && copy_with_libs /usr/sbin/dmidecode
mkdir -p "$root/etc/xen" "$root/etc/libvirt"
cp -a /etc/xen/scripts "$root/etc/xen/"
[ -f /etc/xen/xl.conf ] && cp /etc/xen/xl.conf "$root/etc/xen/"
for nss in /lib/x86_64-linux-gnu/libnss_files.so.2 /usr/lib/x86_64-linux-gnu/libnss_files.so.2; do
  [ -e "$nss" ] && copy "$nss"
done
cp /etc/ld.so.cache "$root/etc/ld.so.cache"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nlibvirt:x:100:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
echo dom0 >"$root/etc/hostname"
cat >"$root/etc/libvirt/libvirtd.conf" <<'CONF'
# dom0 of the nested test Xen: reached only through QEMU's restricted user network
# (hostfwd from the host's 127.0.0.1), so TCP without authentication (test sandbox only)
listen_tls = 0
listen_tcp = 1
tcp_port = "16509"
listen_addr = "0.0.0.0"
auth_tcp = "none"
auth_unix_rw = "none"
unix_sock_group = "root"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
cat >"$root/etc/libvirt/libxl.conf" <<'CONF'
autoballoon = 0
CONF
cp "$here/dom0-init.sh" "$root/init"
chmod +x "$root/init"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$out/dom0.cpio.tmp"
zcat "$xen_gz" >"$out/xen.tmp"
cp "$kernel" "$out/vmlinuz.tmp"
mv "$out/dom0.cpio.tmp" "$out/dom0.cpio"
mv "$out/xen.tmp" "$out/xen"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$stamp" >"$out/stamp"
echo "$out"
