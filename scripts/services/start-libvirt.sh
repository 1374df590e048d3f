#!/usr/bin/env bash
# Starts virtlogd and libvirtd so that qemu:///system answers (QEMU TCG guests; no security driver).
set -euo pipefail
# By PID file, never by name: the second libvirt host (start-libvirt-second.sh) runs libvirtd and
# virtlogd too, with its own PID files.
pidfile=/run/libvirtd.pid
logd_pidfile=/run/virtlogd.pid
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_libvirtd() { # after a configuration change: libvirtd reads qemu.conf only at start
  alive "$pidfile" || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || return 0
  for _ in $(seq 1 50); do alive "$pidfile" || return 0; sleep 0.2; done
}
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu libvirt-qemu
# libvirt probes QEMU as root (with /dev/kvm) but checks KVM as the qemu user: without the kvm
# group the capabilities cache is judged stale on every domain start (about 40 s per start).
if getent group kvm >/dev/null && ! id -nG libvirt-qemu | grep -qw kvm; then
  usermod -aG kvm libvirt-qemu
  stop_libvirtd
fi
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/nova-lfs
conf_changed=0
ensure_conf() { # key value
  if ! grep -qE "^$1 *= *$2\$" /etc/libvirt/qemu.conf 2>/dev/null; then
    sed -i "/^$1 *=/d" /etc/libvirt/qemu.conf 2>/dev/null || true
    echo "$1 = $2" >>/etc/libvirt/qemu.conf
    conf_changed=1
  fi
}
ensure_conf security_driver '"none"'
# With no security driver libvirt does not chown guest files, so QEMU runs as root to open the
# overlays and kernels the driver writes (test machine setting; see scripts/README.md).
ensure_conf user '"root"'
ensure_conf group '"root"'
if [ "$conf_changed" = 1 ]; then stop_libvirtd; fi
if virsh -c qemu:///system version >/dev/null 2>&1; then exit 0; fi
alive "$logd_pidfile" || virtlogd -d -p "$logd_pidfile"
alive "$pidfile" || libvirtd -d -p "$pidfile"
for _ in $(seq 1 60); do
  if virsh -c qemu:///system version >/dev/null 2>&1; then
    virsh -c test:///default list >/dev/null
    exit 0
  fi
  sleep 0.5
done
echo "start-libvirt: qemu:///system did not answer within 30 s" >&2
exit 1
