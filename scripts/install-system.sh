#!/usr/bin/env bash
# Installs the Debian packages and the pnpm that Nova LFS's tests need. Idempotent: skips apt when
# everything is already installed. Run as root on Debian 12 with Node.js 20.
set -euo pipefail

PACKAGES=(
  docker.io busybox-static cpio
  libvirt0 libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  lxc postgresql nats-server linux-image-cloud-amd64 libxml2-utils
  iproute2 procps ca-certificates
  python3-openstackclient python3-novaclient slapd ldap-utils openssh-server
  # nested Xen for driver-xen (scripts/xen/): the hypervisor, its tools and libxl, libvirt's libxl
  # driver, and Debian's generic kernel (dom0 support; the cloud kernel has none)
  xen-hypervisor-4.17-amd64 xen-utils-4.17 libvirt-daemon-driver-xen linux-image-amd64
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]})); then
  echo "install-system: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/nova-lfs-apt.log 2>&1 || {
    tail -30 /tmp/nova-lfs-apt.log
    echo "install-system: apt-get install failed (log: /tmp/nova-lfs-apt.log)" >&2
    exit 1
  }
fi

if ! command -v node >/dev/null; then
  echo "install-system: Node.js 20 is required (not found)" >&2
  exit 1
fi
if ! command -v pnpm >/dev/null; then
  npm install -g pnpm@10 >/dev/null 2>&1 || { echo "install-system: npm install -g pnpm@10 failed" >&2; exit 1; }
fi
