#!/usr/bin/env bash
# start-dom0.sh: boots Xen 4.17 with a dom0 running xenstored, xenconsoled and libvirtd (libxl)
# nested under QEMU TCG, and waits until dom0's libvirtd answers on the host's loopback.
# Idempotent: if the PID file names a live QEMU whose libvirtd answers, it does nothing.
#   NOVA_LFS_XEN_DIR   data folder (default /var/lib/nova-lfs/xen): image/ (cached build),
#                      share/ (9p-shared into dom0 at the same path: guest images, console logs),
#                      qemu.pid, serial.log
#   NOVA_LFS_XEN_PORT  host loopback port forwarded to dom0's libvirtd 16509 (default 16510)
# Prints the libvirt URI (xen+tcp://127.0.0.1:PORT/system) on success.
# Network: QEMU user networking with restrict=on (dom0 reaches no address outside QEMU) and one
# hostfwd bound to 127.0.0.1. libvirtd in dom0 listens on TCP without authentication: acceptable
# only because nothing but the host's loopback reaches it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${NOVA_LFS_XEN_DIR:-/var/lib/nova-lfs/xen}"
port="${NOVA_LFS_XEN_PORT:-16510}"
timeout_s="${NOVA_LFS_XEN_BOOT_TIMEOUT:-240}"
uri="xen+tcp://127.0.0.1:$port/system"
pidfile="$dir/qemu.pid"
share="$dir/share"
mkdir -p "$dir" "$share/console" "$share/images"

answers() { virsh -c "$uri" version >/dev/null 2>&1; }
alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if alive && answers; then
  echo "$uri"
  exit 0
fi
if alive; then
  # booting (another caller started it) or hung: wait for it below rather than start a second one
  :
else
  image="$(bash "$here/build-dom0-image.sh" "$dir/image")"
  rm -f "$pidfile"
  : >"$dir/serial.log"
  # -cpu Westmere: Xen boots under TCG with it (KVM hangs nested guests here, -cpu max fails).
  # Xen gets com1 as its console; dom0's hvc0 goes through Xen to the same serial file.
  qemu-system-x86_64 \
    -machine pc -cpu Westmere -smp 2 -m 1536 \
    -display none -monitor none -serial "file:$dir/serial.log" \
    -kernel "$image/xen" \
    -append "dom0_mem=768M,max:768M dom0_max_vcpus=1 console=com1 com1=115200,8n1 loglvl=warning noreboot" \
    -initrd "$image/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init nova.share=$share quiet,$image/dom0.cpio" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:16509" \
    -device virtio-net-pci,netdev=n0 \
    -virtfs "local,path=$share,mount_tag=novashare,security_model=none,id=novashare" \
    -pidfile "$pidfile" -daemonize
fi

deadline=$((SECONDS + timeout_s))
until answers; do
  if ! alive; then
    echo "start-dom0: QEMU exited; last console lines:" >&2
    tail -20 "$dir/serial.log" >&2
    exit 1
  fi
  if ((SECONDS > deadline)); then
    echo "start-dom0: dom0's libvirtd did not answer within ${timeout_s} s; last console lines:" >&2
    tail -20 "$dir/serial.log" >&2
    for f in "$share/dom0-libvirtd.log" "$share/log/libvirt/libvirtd.log"; do
      [ -s "$f" ] && { echo "-- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
  fi
  sleep 1 # no event crosses from the guest: poll the real state (virsh answering), bounded above
done
echo "$uri"
