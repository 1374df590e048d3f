#!/usr/bin/env bash
# Starts a second libvirt host on this machine, for live migration between two real libvirtds:
# its own root libvirtd and virtlogd in a private mount namespace (`unshare --mount --propagation
# private`), with private folders under $NOVA_LFS_LIBVIRT2_DIR bound over /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, its own host_uuid
# (libvirt refuses a migration between two hosts with one UUID) and its own migration port range.
# Its socket is under the data directory, visible at the same path inside and outside the namespace:
#   qemu+unix:///system?socket=$NOVA_LFS_LIBVIRT2_DIR/sock/libvirt-sock
# Loopback only: no TCP listener; migration streams go to 127.0.0.1 (each migration passes
# `migrate_uri tcp://127.0.0.1[:PORT]` and `listen_address 127.0.0.1`; setting migration_address
# in qemu.conf to 127.0.0.1 makes libvirtd refuse to start). Idempotent; PID files in the data
# directory; stop with scripts/services/stop-libvirt-second.sh. Needs scripts/services/start-libvirt.sh
# to have run once (user libvirt-qemu, /etc/libvirt/qemu.conf settings it copies).
set -euo pipefail
data="${NOVA_LFS_LIBVIRT2_DIR:-/var/lib/nova-lfs/libvirt-second}"
sock="$data/sock/libvirt-sock"
uri="qemu+unix:///system?socket=$sock"
answers() { virsh -c "$uri" version >/dev/null 2>&1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if alive "$data/libvirtd.pid" && answers; then exit 0; fi

mkdir -p "$data"/{etc,run,lib,cache,log,sock}
chmod 755 "$data" "$data/sock"
[ -s "$data/host_uuid" ] || cat /proc/sys/kernel/random/uuid >"$data/host_uuid"
host_uuid="$(cat "$data/host_uuid")"
cat >"$data/etc/libvirtd.conf" <<EOF
# Written by scripts/services/start-libvirt-second.sh (the second libvirt host).
host_uuid = "$host_uuid"
unix_sock_dir = "$data/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
cat >"$data/etc/qemu.conf" <<EOF
# Written by scripts/services/start-libvirt-second.sh (the second libvirt host).
security_driver = "none"
user = "root"
group = "root"
# The first libvirtd keeps libvirt's default range (49152-49215): the two never share a port.
migration_port_min = 49400
migration_port_max = 49463
EOF
cat >"$data/etc/virtlogd.conf" <<EOF
# Written by scripts/services/start-libvirt-second.sh (the second libvirt host).
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
EOF
cp -n /etc/libvirt/libvirt.conf "$data/etc/" 2>/dev/null || true
mkdir -p "$data/etc/qemu" "$data/lib/qemu" "$data/cache/qemu" "$data/log/qemu"

# A daemon left from a half-failed start: stop it by its PID file before starting afresh.
for p in libvirtd virtlogd; do
  if alive "$data/$p.pid"; then kill "$(cat "$data/$p.pid")" 2>/dev/null || true; fi
done
for _ in $(seq 1 50); do
  alive "$data/libvirtd.pid" || alive "$data/virtlogd.pid" || break
  sleep 0.2
done
rm -f "$data/libvirtd.pid" "$data/virtlogd.pid" "$data"/sock/*

# Both daemons run in one private mount namespace (it lives as long as they do): qemu's logs go
# through the namespace's own /run/libvirt/virtlogd-sock.
unshare --mount --propagation private -- /bin/sh -ec '
  d="$1"
  mount --bind "$d/etc" /etc/libvirt
  mount --bind "$d/run" /run/libvirt
  mount --bind "$d/lib" /var/lib/libvirt
  mount --bind "$d/cache" /var/cache/libvirt
  mount --bind "$d/log" /var/log/libvirt
  virtlogd -d -f /etc/libvirt/virtlogd.conf -p "$d/virtlogd.pid"
  libvirtd -d -f /etc/libvirt/libvirtd.conf -p "$d/libvirtd.pid"
' sh "$data"

for _ in $(seq 1 60); do
  if answers; then exit 0; fi
  sleep 0.5
done
echo "start-libvirt-second: $uri did not answer within 30 s (log: $data/log/libvirtd.log)" >&2
exit 1
