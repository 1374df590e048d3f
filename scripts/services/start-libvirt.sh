#!/usr/bin/env bash
# Starts virtlogd and libvirtd so that qemu:///system answers (QEMU TCG guests; no security driver).
set -euo pipefail
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu libvirt-qemu
# libvirt probes QEMU as root (with /dev/kvm) but checks KVM as the qemu user: without the kvm
# group the capabilities cache is judged stale on every domain start (about 40 s per start).
if getent group kvm >/dev/null && ! id -nG libvirt-qemu | grep -qw kvm; then
  usermod -aG kvm libvirt-qemu
  pkill -x libvirtd 2>/dev/null && sleep 1 || true
fi
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/nova-lfs
if ! grep -qE '^security_driver *= *"none"' /etc/libvirt/qemu.conf; then
  echo 'security_driver = "none"' >>/etc/libvirt/qemu.conf
fi
if virsh -c qemu:///system version >/dev/null 2>&1; then exit 0; fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 60); do
  if virsh -c qemu:///system version >/dev/null 2>&1; then
    virsh -c test:///default list >/dev/null
    exit 0
  fi
  sleep 0.5
done
echo "start-libvirt: qemu:///system did not answer within 30 s" >&2
exit 1
